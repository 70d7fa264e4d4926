// Simulated boards for the instrument tests: in-process (sim: addresses), served over TCP
// loopback on a thread (drivers::TcpListener) and over a pseudo-terminal on a thread (the host
// opens it through the serial driver). All run the real firmware (sim/), nothing is mocked.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <thread>

#include "drivers/pseudo_terminal.hpp"
#include "drivers/tcp_transport.hpp"
#include "drivers/transport.hpp"
#include "instruments/array_board.hpp"
#include "sim/server.hpp"

namespace metaplast::testing {

inline std::string sim_address(std::uint64_t seed, const std::string& extra = "") {
  // The instruments tests are their own composition root (they link instruments and sim, not app).
  sim::register_transport_scheme();
  return "sim:?seed=" + std::to_string(seed) + "&formed=1" + extra;
}

inline sim::SimOptions sim_options(std::uint64_t seed) {
  sim::SimOptions o;
  o.seed = seed;
  o.formed = true;
  return o;
}

class TcpSimBoard {
 public:
  explicit TcpSimBoard(const sim::SimOptions& options)
      : firmware_(sim::make_firmware(options)), listener_("127.0.0.1", 0) {
    thread_ = std::thread([this] {
      sim::ServeOptions so;
      so.stop = &stop_;
      so.poll_interval = std::chrono::milliseconds(5);
      sim::serve_tcp(listener_, *firmware_, so);
    });
  }
  ~TcpSimBoard() {
    stop_ = true;
    listener_.close();
    thread_.join();
  }
  std::string address() const { return listener_.address(); }

 private:
  std::unique_ptr<sim::BoardFirmware> firmware_;
  drivers::TcpListener listener_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class PtySimBoard {
 public:
  explicit PtySimBoard(const sim::SimOptions& options) : firmware_(sim::make_firmware(options)) {
    thread_ = std::thread([this] {
      sim::ServeOptions so;
      so.stop = &stop_;
      so.poll_interval = std::chrono::milliseconds(5);
      sim::serve(pty_, *firmware_, so);
    });
  }
  ~PtySimBoard() {
    stop_ = true;
    thread_.join();
    pty_.close();
  }
  std::string address() const { return pty_.client_address(921600); }

 private:
  std::unique_ptr<sim::BoardFirmware> firmware_;
  drivers::PseudoTerminal pty_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Counts the bytes a transport writes (installed on the board's live transport).
class ByteCounter : public drivers::TransportObserver {
 public:
  void on_write(std::span<const std::uint8_t> bytes, const drivers::IoTimestamp&) override {
    written += bytes.size();
  }
  void on_read(std::span<const std::uint8_t>, const drivers::IoTimestamp&) override {}
  std::atomic<std::size_t> written{0};
};

inline std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("metaplast_inst_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace metaplast::testing
