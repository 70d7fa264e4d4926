// A metaplast-simboard process that outlives the hosts talking to it, as a real board does: on a
// free loopback TCP port, or on a pseudo-terminal that the host opens as a serial port (standing
// for a real chip). Header-only, for the app tests that run the real binaries.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "instruments/array_board.hpp"
#include "tests/app/support/process.hpp"

namespace metaplast::test {

class SimboardProcess {
 public:
  enum class Link { tcp, pty };

  // Starts `metaplast-simboard --tcp 127.0.0.1:0` (or `--pty`) with `args` (e.g. "--formed",
  // "--seed", "4"), its output in `log`, and waits for the address it prints first.
  SimboardProcess(Link link, std::filesystem::path log, const std::vector<std::string>& args)
      : log_(std::move(log)) {
    const std::string binary = METAPLAST_BINARY_DIR "/bin/metaplast-simboard";
    std::vector<std::string> argv{binary};
    if (link == Link::tcp) {
      argv.insert(argv.end(), {"--tcp", "127.0.0.1:0"});
    } else {
      argv.push_back("--pty");
    }
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = spawn(binary, argv, log_);
    const std::string scheme = link == Link::tcp ? "tcp:" : "serial:";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (address_.empty() && std::chrono::steady_clock::now() < deadline) {
      const std::string text = read_file(log_);
      const auto end = text.find('\n');
      if (text.rfind(scheme, 0) == 0 && end != std::string::npos) address_ = text.substr(0, end);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    INFO(read_file(log_));
    REQUIRE_FALSE(address_.empty());
  }
  ~SimboardProcess() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    std::filesystem::remove_all(log_);
  }
  SimboardProcess(const SimboardProcess&) = delete;
  SimboardProcess& operator=(const SimboardProcess&) = delete;

  const std::string& address() const { return address_; }

  // SET, RESET and FORM pulses over every cell, from the board's own counters.
  std::uint64_t total_pulses() const {
    std::uint64_t n = 0;
    for (const auto& c : counters()) n += c.set_pulses + c.reset_pulses + c.form_pulses;
    return n;
  }

  // The board's own pulse counters of every cell, read over the link as any host would.
  std::vector<instruments::CellCounters> counters() const {
    instruments::ArrayBoard board(address_);
    board.open();
    auto counters = board.counters_array();
    board.close();
    return counters;
  }

 private:
  pid_t pid_ = 0;
  std::filesystem::path log_;
  std::string address_;
};

}  // namespace metaplast::test
