// BoardLink: every wait on the board ends at its deadline, whatever the board sends.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>

#include "instruments/array_board.hpp"
#include "instruments/board_link.hpp"
#include "scripted_board.hpp"
#include "sim_boards.hpp"

using namespace metaplast;
using namespace metaplast::instruments;
using namespace metaplast::testing;
using namespace std::chrono_literals;
namespace p = metaplast::protocols;

namespace {

// Answers every request with an endless stream of valid response frames carrying the previous
// sequence number (what stale duplicates of earlier replies look like), written as fast as the
// host takes them, so that bytes are always waiting whenever the host reads.
ScriptedBoard::Script stale_stream(const ScriptedBoard& board) {
  return [&board](const p::Frame& request, drivers::Transport& link) {
    const auto payload = p::encode_response(p::ResponseStatus{p::Status::kOk, 7, 0},
                                            p::GetStatusResponse{p::board_state::kSafe, 7, 0, 0});
    const auto stale = p::encode_response_frame(
        static_cast<std::uint16_t>(request.header.sequence - 1), p::Opcode::kGetStatus, payload);
    std::vector<std::uint8_t> burst;
    for (int i = 0; i < 100; ++i) burst.insert(burst.end(), stale.begin(), stale.end());
    while (!board.stopping() && link.write(burst, drivers::deadline_after(1s)).ok()) {
    }
  };
}

}  // namespace

TEST_CASE("a board streaming stale frames cannot hold the host past its deadline") {
  std::unique_ptr<ScriptedBoard> board;
  board = std::make_unique<ScriptedBoard>(
      [&](const p::Frame& f, drivers::Transport& link) { stale_stream (*board)(f, link); });
  RetryPolicy policy;
  policy.reply_timeout = 200ms;
  policy.max_resends = 2;
  policy.max_reconnects = 0;
  // At most (max_resends + 1) * reply_timeout = 600 ms; the old wait never ended while bytes
  // flowed. Run it aside so that a regression fails here instead of hanging the suite.
  auto opened = std::async(std::launch::async, [&] {
    ArrayBoard host(board->address(), StationLimits::defaults(), policy);
    const auto start = std::chrono::steady_clock::now();
    std::string error;
    try {
      host.open();
    } catch (const LinkError& e) {
      error = e.what();
    }
    return std::pair{error, std::chrono::steady_clock::now() - start};
  });
  const bool finished = opened.wait_for(60s) == std::future_status::ready;
  board->stop();
  REQUIRE(finished);
  const auto [error, elapsed] = opened.get();
  INFO(error);
  CHECK(error.find("no valid reply to IDENTIFY") != std::string::npos);
  CHECK(error.find("no reply within 200 ms") != std::string::npos);
  CHECK(error.find("not the reply discarded") != std::string::npos);
  CHECK(elapsed < 5s);  // 600 ms plus a generous margin for a loaded machine
}

TEST_CASE("a board answering sequence_reused to everything ends in a LinkError, not a loop") {
  // A cached reply of an earlier session can collide once; a board that keeps answering
  // sequence_reused is broken and must not make the host renumber for ever.
  ScriptedBoard board([](const p::Frame& request, drivers::Transport& link) {
    const auto reply = p::encode_response_frame(
        request.header.sequence, static_cast<p::Opcode>(request.header.opcode),
        p::encode_error_response({p::Status::kSequenceReused, 7, 0}));
    link.write(reply, drivers::deadline_after(1s));
  });
  RetryPolicy policy;
  policy.reply_timeout = 200ms;
  policy.max_resends = 2;
  policy.max_reconnects = 0;
  BoardLink link(board.address(), policy);
  link.connect();
  auto reply = std::async(std::launch::async, [&] {
    return link.transact(p::Opcode::kGetStatus, std::span<const std::uint8_t>{});
  });
  const bool finished = reply.wait_for(60s) == std::future_status::ready;
  board.stop();
  REQUIRE(finished);
  // The second renumbering is not allowed: the sequence_reused reply is returned to the caller.
  CHECK(reply.get().status.status == p::Status::kSequenceReused);
}

TEST_CASE("a board serving another host is reported busy, with that reason, at once") {
  TcpSimBoard board(sim_options(71));
  const auto port = static_cast<std::uint16_t>(std::stoi(board.address().substr(14)));
  auto first = drivers::TcpTransport::connect("127.0.0.1", port);  // holds the board, silent
  ArrayBoard second(board.address());
  std::string error;
  try {
    second.open();
  } catch (const LinkError& e) {
    error = e.what();
  }
  INFO(error);
  CHECK(error.find("board busy: it is serving another host connection") != std::string::npos);
  CHECK(error.find("Try again when the board is free") != std::string::npos);
  first->close();
}
