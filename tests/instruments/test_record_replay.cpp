// Record a session, replay it: against the same seed nothing differs; against another chip the
// differences are reported; a request beyond the station limits is refused, not sent.
#include <catch2/catch.hpp>
#include <fstream>

#include "instruments/array_board.hpp"
#include "instruments/session_replay.hpp"
#include "protocols/board_messages.hpp"
#include "sim_boards.hpp"

using namespace metaplast::instruments;
using namespace metaplast::testing;

namespace {

void record_session(const std::string& address, const std::filesystem::path& path,
                    const BoardSettings& settings = {}) {
  ArrayBoard board(address);
  board.set_recorder(std::make_shared<FrameRecorder>(path, address));
  board.open();
  board.configure(settings);
  board.activate();
  std::vector<ProgramTarget> targets;
  for (std::uint16_t i = 0; i < 300; ++i) {
    targets.push_back({{static_cast<std::uint16_t>(i / 64), static_cast<std::uint16_t>(i % 64)},
                       static_cast<Level>(i % board.info().levels.size())});
  }
  ProgramOptions options;
  options.band_us = 4.0;
  board.program_and_verify(targets, options);
  board.read_array();
  board.counters_array();
}

ReplayReport replay(const std::filesystem::path& path, const std::string& address,
                    const StationLimits& limits = {}) {
  BoardLink link(address, RetryPolicy{});
  link.connect();
  return replay_session(load_recording(path), link, limits);
}

}  // namespace

TEST_CASE("a recorded session replayed against the same seed shows no differences") {
  const auto path = temp_path("session.jsonl");
  record_session(sim_address(51), path);
  const auto recording = load_recording(path);
  CHECK(recording.device == sim_address(51));
  CHECK(recording.frames.size() > 20);

  const auto same = replay(path, sim_address(51));
  CHECK(same.requests > 10);
  CHECK(same.sent == same.requests);
  CHECK(same.matched == same.requests);
  CHECK(same.differences.empty());

  const auto other = replay(path, sim_address(52));
  CHECK_FALSE(other.differences.empty());  // another chip reads differently

  // A station with a lower bit-line limit refuses the recorded CONFIGURE (forming at 3.6 V).
  StationLimits strict;
  strict.max_bl_voltage_v = 2.0;
  const auto refused = replay(path, sim_address(51), strict);
  REQUIRE_FALSE(refused.differences.empty());
  CHECK(refused.differences[0].opcode == std::string("CONFIGURE"));
  CHECK(refused.differences[0].what.find("station limits") != std::string::npos);
  CHECK(refused.sent == refused.requests - 1);
  std::filesystem::remove(path);
}

TEST_CASE("a recorded level table beyond the station's gate limit is refused, not sent") {
  const auto path = temp_path("levels-session.jsonl");
  BoardSettings settings;
  settings.level_gate_voltages_v = {0.916, 1.047};
  settings.level_targets_us = {40, 80};
  record_session(sim_address(53), path, settings);
  CHECK(replay(path, sim_address(53)).differences.empty());
  StationLimits strict;
  strict.max_wl_voltage_v = 1.0;
  strict.max_sl_voltage_v = 2.0;
  const auto refused = replay(path, sim_address(53), strict);
  REQUIRE_FALSE(refused.differences.empty());
  CHECK(refused.differences[0].opcode == std::string("SET_LEVELS"));
  CHECK(refused.differences[0].what.find("station limits") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("a malformed recording is refused with the file and line") {
  const auto path = temp_path("bad.jsonl");
  {
    std::ofstream out(path);
    out << R"({"format":"metaplast-board-record","version":1,"device":"sim:"})"
        << "\n";
    out << R"({"t_us":1,"dir":"tx","frame":"a5zz"})"
        << "\n";
  }
  try {
    load_recording(path);
    FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(path.string() + ":2") != std::string::npos);
  }
  std::filesystem::remove(path);
}
