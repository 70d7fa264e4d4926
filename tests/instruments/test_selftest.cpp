// `metaplast board selftest`: the conformance checks pass against the simulated board, with and
// without the program-and-verify capability, in-process and over TCP.
#include <algorithm>
#include <catch2/catch.hpp>

#include "instruments/board_selftest.hpp"
#include "instruments/frame_recorder.hpp"
#include "sim_boards.hpp"

using namespace metaplast::instruments;
using namespace metaplast::testing;

namespace {

void check_all_pass(const std::string& address, bool watchdog) {
  ArrayBoard board(address);
  board.open();
  SelftestOptions options;
  options.check_watchdog = watchdog;
  const auto checks = run_selftest(board, options);
  CHECK(checks.size() >= (watchdog ? 10u : 9u));
  for (const auto& c : checks) {
    INFO(c.name << ": " << c.detail);
    CHECK(c.passed);
  }
  CHECK(board.state() == BoardState::safe);
}

}  // namespace

TEST_CASE("selftest passes against the simulated board") {
  check_all_pass(sim_address(61), true);
  check_all_pass(sim_address(62, "&program_verify=0"), false);
  TcpSimBoard tcp(sim_options(63));
  check_all_pass(tcp.address(), false);
  check_all_pass(sim_address(64, "&level_table=0"), false);
}

TEST_CASE("selftest checks SET_LEVELS where the board has the capability, and says so otherwise") {
  for (const bool capability : {true, false}) {
    ArrayBoard board(sim_address(65, capability ? "" : "&level_table=0"));
    board.open();
    const auto checks = run_selftest(board, SelftestOptions{});
    const auto level = std::find_if(checks.begin(), checks.end(), [](const auto& c) {
      return c.name.rfind("level table", 0) == 0;
    });
    REQUIRE(level != checks.end());
    INFO(level->detail);
    CHECK(level->passed);
    CHECK_THAT(level->detail, capability ? Catch::Contains("refused out_of_limits (field "
                                                           "level_gate)")
                                         : Catch::Contains("no LEVEL_TABLE capability"));
  }
}

TEST_CASE("selftest on an unformed probe cell: the refusal is cached and nothing is pulsed") {
  // RESET on a pristine cell is answered not_formed; the repetition must get the same cached
  // reply and the counters must not move.
  ArrayBoard board(sim_address(64).replace(sim_address(64).find("&formed=1"), 9, ""));
  board.open();
  const auto checks = run_selftest(board, SelftestOptions{{5, 5}, false});
  bool saw_repeat = false;
  for (const auto& c : checks) {
    if (c.name.find("repeated sequence") != std::string::npos) {
      saw_repeat = true;
      CHECK(c.passed);
      CHECK(c.detail.find("not_formed") != std::string::npos);
    }
  }
  CHECK(saw_repeat);
}

TEST_CASE("selftest without permission to pulse: the read-only checks run, no pulse is sent") {
  ArrayBoard board(sim_address(66));
  board.open();
  const auto before = board.counters_array();
  SelftestOptions options;
  options.allow_pulses = false;
  const auto checks = run_selftest(board, options);
  std::size_t skipped = 0, run = 0;
  for (const auto& c : checks) {
    INFO(c.name << ": " << c.detail);
    CHECK(c.passed);
    if (c.skipped) {
      ++skipped;
      CHECK_THAT(c.detail, Catch::Contains("needs permission to pulse"));
    } else {
      ++run;
    }
  }
  CHECK(skipped == 3);  // repeated sequence, other boot, watchdog trip: each sends a RESET
  CHECK(run >= 7);
  const auto after = board.counters_array();
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].programming_operations() == before[i].programming_operations());
  }
  board.close();
}

TEST_CASE("selftest passes against a board without BATCH_STATUS (an optional opcode)") {
  // The truncated-payload check used BATCH_STATUS, which such a board rightly answers
  // not_supported before looking at the payload.
  check_all_pass(sim_address(65, "&batch_status=0"), true);
}

TEST_CASE("selftest sends no setting beyond the station limits") {
  // The default station allows 0.3 V read; the simulated board claims 0.5 V. The out-of-limits
  // probe used to send the board's maximum + 1 mV (0.501 V).
  const auto record = temp_path("selftest_station.jsonl");
  const auto station = StationLimits::defaults();
  {
    ArrayBoard board(sim_address(66), station);
    board.set_recorder(std::make_shared<FrameRecorder>(record, "sim"));
    board.open();
    REQUIRE(board.info().limits.read_voltage_max_v > station.max_read_voltage_v);
    const auto checks = run_selftest(board);
    for (const auto& c : checks) {
      INFO(c.name << ": " << c.detail);
      CHECK(c.passed);
    }
  }
  std::size_t configures = 0;
  for (const auto& frame : load_recording(record).frames) {
    if (frame.direction != FrameDirection::to_board) continue;
    metaplast::protocols::Frame decoded;
    if (!metaplast::protocols::decode_frame(frame.bytes, decoded)) continue;  // the bad-CRC probe
    if (decoded.header.opcode !=
        static_cast<std::uint8_t>(metaplast::protocols::Opcode::kConfigure)) {
      continue;
    }
    const auto config =
        metaplast::protocols::decode<metaplast::protocols::ConfigureRequest>(decoded.payload);
    if (!config) continue;  // the truncated-payload probe carries no setting
    ++configures;
    const auto& c = config.value->config;
    INFO("CONFIGURE read " << c.read_voltage_mv << " mV");
    CHECK(c.read_voltage_mv <= station.max_read_voltage_v * 1000);
    CHECK(c.set_bit_line_mv <= station.max_bl_voltage_v * 1000);
    CHECK(c.form_bit_line_mv <= station.max_bl_voltage_v * 1000);
    CHECK(c.reset_source_line_mv <= station.max_sl_voltage_v * 1000);
    CHECK(c.reset_word_line_mv <= station.max_wl_voltage_v * 1000);
    CHECK(c.form_word_line_mv <= station.max_wl_voltage_v * 1000);
    CHECK(c.set_width_ns <= station.max_pulse_width_ns);
    CHECK(c.reset_width_ns <= station.max_pulse_width_ns);
    CHECK(c.form_width_ns <= station.max_pulse_width_ns);
  }
  CHECK(configures >= 2);  // the host's own configuration and the refused probe
  std::filesystem::remove(record);
}
