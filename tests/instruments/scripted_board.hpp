// A board peer on a TCP loopback port whose answers a test writes by hand, for boards that
// misbehave in ways the simulator does not (a board that streams stale frames, an IDENTIFY with
// values outside the protocol's ranges). The host side under test is the real one.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <variant>
#include <vector>

#include "drivers/tcp_transport.hpp"
#include "protocols/board_messages.hpp"
#include "protocols/frame.hpp"

namespace metaplast::testing {

class ScriptedBoard {
 public:
  // Called on the board's thread for every request frame; writes what it wants to `link`.
  using Script = std::function<void(const protocols::Frame& request, drivers::Transport& link)>;

  explicit ScriptedBoard(Script script) : listener_("127.0.0.1", 0) {
    thread_ = std::thread([this, script = std::move(script)] { run(script); });
  }
  ~ScriptedBoard() {
    stop_ = true;
    listener_.close();
    thread_.join();
  }
  std::string address() const { return listener_.address(); }
  bool stopping() const { return stop_.load(); }
  void stop() { stop_ = true; }

 private:
  void run(const Script& script) {
    using namespace std::chrono_literals;
    while (!stop_) {
      auto link = listener_.accept(drivers::deadline_after(50ms));
      if (!link) continue;
      protocols::StreamDecoder decoder;
      std::vector<std::uint8_t> buffer(8192);
      while (!stop_) {
        const auto r = link->read_some(buffer, drivers::deadline_after(50ms));
        if (r.closed()) break;
        for (const auto& event : decoder.feed(std::span(buffer.data(), r.bytes))) {
          if (const auto* frame = std::get_if<protocols::Frame>(&event)) script(*frame, *link);
        }
      }
    }
  }

  drivers::TcpListener listener_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace metaplast::testing
