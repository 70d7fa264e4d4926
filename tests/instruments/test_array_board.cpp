// The array-board driver against the in-process simulated board: lifecycle, identify, host-side
// limits (nothing sent), both program-and-verify implementations, counters, safe state on exit.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

#include "instruments/array_board.hpp"
#include "protocols/board_messages.hpp"
#include "sim_boards.hpp"

using namespace metaplast::instruments;
using metaplast::testing::ByteCounter;
using metaplast::testing::sim_address;
namespace p = metaplast::protocols;

namespace {

std::vector<ProgramTarget> random_targets(std::size_t n, std::uint32_t seed, int levels) {
  std::mt19937 rng(seed);
  std::vector<ProgramTarget> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(
        {{static_cast<std::uint16_t>(i / 128 * 3 % 128), static_cast<std::uint16_t>(i % 128)},
         static_cast<Level>(rng() % levels)});
  }
  return out;
}

std::vector<Cell> cells_of(const std::vector<ProgramTarget>& targets) {
  std::vector<Cell> cells;
  for (const auto& t : targets) cells.push_back(t.cell);
  return cells;
}

}  // namespace

TEST_CASE("operations in the wrong lifecycle state throw and say what to call") {
  ArrayBoard board(sim_address(3));
  CHECK(board.state() == BoardState::closed);
  CHECK_THROWS_AS(board.read_array(), LifecycleError);
  const auto& info = board.open();
  CHECK(board.state() == BoardState::connected);
  CHECK(info.rows == 128);
  CHECK(info.cols == 128);
  CHECK(info.levels.size() == 9);
  CHECK(info.boot_id != 0);
  CHECK(info.has_program_verify());
  try {
    board.read({{0, 0}});
    FAIL("read in state connected should throw");
  } catch (const LifecycleError& e) {
    CHECK(std::string(e.what()).find("configure()") != std::string::npos);
  }
  CHECK_THROWS_AS(board.activate(), LifecycleError);
  board.configure({});
  CHECK(board.state() == BoardState::configured);
  board.activate();
  CHECK(board.state() == BoardState::active);
  CHECK(board.read({{5, 7}}).size() == 1);
  board.safe_state();
  CHECK(board.state() == BoardState::safe);
  CHECK_THROWS_AS(board.reset({{0, 0}}), LifecycleError);
  board.configure({});
  board.activate();
  CHECK_NOTHROW(board.reset({{0, 0}}));
  CHECK_THROWS_AS(board.read({{128, 0}}), std::out_of_range);
  board.close();
  CHECK(board.state() == BoardState::closed);
  CHECK_THROWS_AS(board.configure({}), LifecycleError);
}

TEST_CASE("settings and pulses outside the limits are refused before anything is sent") {
  StationLimits station;
  station.max_bl_voltage_v = 2.0;
  station.max_pulses_per_verify = 10;
  ArrayBoard board(sim_address(4), station);
  board.open();
  auto counter = std::make_shared<ByteCounter>();
  board.link().transport()->set_observer(counter);

  BoardSettings settings;  // default forming at 3.6 V on the bit line: above this station's 2.0 V
  CHECK_THROWS_AS(board.configure(settings), LimitError);
  CHECK(counter->written == 0);
  CHECK(board.state() == BoardState::connected);

  settings.form_bl_voltage_v = 1.9;
  board.configure(settings);  // within the station limits: sent
  board.activate();
  CHECK(counter->written > 0);
  counter->written = 0;

  CHECK_THROWS_AS(board.set_explicit({{0, 0}}, PulseSpec{1.0, 2.5, 100}), LimitError);
  ProgramOptions too_many;
  too_many.max_attempts = 11;
  CHECK_THROWS_AS(board.program_and_verify({{{0, 0}, 3}}, too_many), LimitError);
  CHECK(counter->written == 0);

  // Within the station's limits but outside the board's own (identify): refused by the host too.
  StationLimits loose;
  loose.max_read_voltage_v = 5.0;
  ArrayBoard board2(sim_address(4), loose);
  board2.open();
  auto counter2 = std::make_shared<ByteCounter>();
  board2.link().transport()->set_observer(counter2);
  BoardSettings high_read;
  high_read.read_voltage_v = 0.9;
  CHECK_THROWS_AS(board2.configure(high_read), LimitError);
  CHECK(counter2->written == 0);
}

TEST_CASE("both program-and-verify implementations reach the bands and count every pulse") {
  const auto targets = random_targets(300, 21, 9);
  for (const bool on_board : {true, false}) {
    INFO((on_board ? "board opcode" : "host loop"));
    ArrayBoard board(sim_address(9, on_board ? "" : "&program_verify=0"));
    board.open();
    CHECK(board.info().has_program_verify() == on_board);
    board.configure({});
    board.activate();
    const auto before = board.counters(cells_of(targets));
    ProgramOptions options;
    options.band_us = 5.0;
    options.max_attempts = 40;
    const auto report = board.program_and_verify(targets, options);
    CHECK(report.used == (on_board ? VerifyImplementation::board : VerifyImplementation::host));
    REQUIRE(report.cells.size() == targets.size());
    // A few manufacturing defects (0.1 %) may not reach a band; everything else must.
    CHECK(report.passed() >= targets.size() - 3);
    const auto after = board.counters(cells_of(targets));
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& r = report.cells[i];
      CHECK(r.cell == targets[i].cell);
      const double target = board.level_conductance_us(targets[i].level);
      if (r.passed) {
        if (targets[i].level == kLcsLevel) {
          CHECK(r.final_conductance_us <= target + 5.0);
        } else {
          CHECK(std::abs(r.final_conductance_us - target) <= 5.0);
        }
      }
      // Exactly the pulses reported: no double programming.
      CHECK(after[i].programming_operations() - before[i].programming_operations() == r.attempts);
      if (r.not_formed) {
        CHECK_FALSE(r.passed);  // a manufacturing defect: reported, never pulsed
        CHECK(r.attempts == 0);
      } else {
        CHECK(r.final_conductance_us == board.code_to_conductance_us(r.final_code, 0));
      }
    }
  }
}

TEST_CASE("form, set, reset and reads move cells between the states") {
  ArrayBoard board(sim_address(12).replace(sim_address(12).find("&formed=1"), 9, ""));
  board.open();
  board.configure({});
  board.activate();
  std::vector<Cell> cells;
  for (std::uint16_t c = 0; c < 16; ++c) cells.push_back({2, c});
  const auto pristine = board.read(cells);
  CHECK_THROWS_AS(board.set(cells, 4), BoardStatusError);  // not formed yet: the board refuses
  board.form(cells);
  board.reset(cells);
  const auto lcs = board.read(cells);
  board.set(cells, 8);
  const auto hcs = board.read_row(2);
  const auto counters = board.counters(cells);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    CHECK(pristine[i].conductance_us < 1.0);
    CHECK(lcs[i].conductance_us < board.level_conductance_us(1));
    CHECK(hcs.at_us(2, cells[i].col) > board.level_conductance_us(7));
    CHECK(counters[i].form_pulses >= 1);
    CHECK(counters[i].set_pulses == 1);
    CHECK(counters[i].reset_pulses == 1);
  }
  const auto map = board.read_array();
  CHECK(map.codes.size() == 128u * 128u);
  CHECK(map.at_us(2, 3) > board.level_conductance_us(7));
}

TEST_CASE("the safe state is sent on every exit path, also when an exception unwinds") {
  const auto path = metaplast::testing::temp_path("safe.jsonl");
  try {
    ArrayBoard board(sim_address(2));
    board.set_recorder(std::make_shared<FrameRecorder>(path, "sim"));
    board.open();
    board.configure({});
    board.activate();
    board.read({{1, 1}});
    throw std::runtime_error("experiment aborted");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "experiment aborted");
  }
  const auto rec = load_recording(path);
  std::optional<p::Frame> last_request;
  for (const auto& f : rec.frames) {
    p::Frame frame;
    if (f.direction == FrameDirection::to_board && p::decode_frame(f.bytes, frame)) {
      last_request = frame;
    }
  }
  REQUIRE(last_request);
  CHECK(last_request->header.opcode == static_cast<std::uint8_t>(p::Opcode::kSafeState));
  std::filesystem::remove(path);
}

namespace {

// A level table on the default chip (levels I_CC = 10 k uA at 0.6 + sqrt(I_CC / 200 uA) V):
// three levels at 20, 40 and 60 uA with targets at their median conductances.
BoardSettings three_levels() {
  BoardSettings s;
  s.level_gate_voltages_v = {0.916, 1.047, 1.148};
  s.level_targets_us = {40, 80, 120};
  return s;
}

double median_us(std::vector<CellReading> readings) {
  std::sort(readings.begin(), readings.end(),
            [](const auto& a, const auto& b) { return a.conductance_us < b.conductance_us; });
  return readings[readings.size() / 2].conductance_us;
}

}  // namespace

TEST_CASE("a level table in the settings replaces the board's; SET and verify follow it",
          "[levels]") {
  ArrayBoard board(sim_address(23));
  const std::vector<LevelInfo> own = board.open().levels;
  REQUIRE(own.size() == 9);
  std::vector<Cell> cells;
  for (std::uint16_t c = 0; c < 64; ++c) cells.push_back({40, c});

  // The board's own level 1 (0.824 V, 10 uA) against the table's level 1 (0.916 V, 20 uA).
  board.configure({});
  board.activate();
  board.reset(cells);
  board.set(cells, 1);
  const double own_level_1 = median_us(board.read(cells));

  board.configure(three_levels());
  board.activate();
  const auto& levels = board.info().levels;
  REQUIRE(levels.size() == 4);
  CHECK(levels[0].target_conductance_us == own[0].target_conductance_us);
  CHECK(levels[1].icc_ua == Approx(20));
  CHECK(levels[2].icc_ua == Approx(40));
  CHECK(levels[3].gate_voltage_v == Approx(1.148));
  CHECK(board.level_conductance_us(3) == Approx(120));
  board.reset(cells);
  board.set(cells, 1);
  const double table_level_1 = median_us(board.read(cells));
  CHECK(own_level_1 == Approx(20).epsilon(0.15));    // G ~ I_CC / 0.5 V
  CHECK(table_level_1 == Approx(40).epsilon(0.15));  // the higher gate's I_CC

  // Program-and-verify (board opcode and host loop) reaches the table's targets.
  for (const bool on_board : {true, false}) {
    INFO((on_board ? "board opcode" : "host loop"));
    ArrayBoard verifying(sim_address(24, on_board ? "" : "&program_verify=0"));
    verifying.open();
    verifying.configure(three_levels());
    verifying.activate();
    std::vector<ProgramTarget> targets;
    for (std::uint16_t c = 0; c < 90; ++c)
      targets.push_back({{7, c}, static_cast<Level>(1 + c % 3)});
    ProgramOptions options;
    options.band_us = 4.0;
    options.max_attempts = 40;
    const auto report = verifying.program_and_verify(targets, options);
    CHECK(report.passed() >= targets.size() - 2);
    for (std::size_t i = 0; i < targets.size(); ++i) {
      if (!report.cells[i].passed) continue;
      CHECK(report.cells[i].final_conductance_us == Approx(40.0 * targets[i].level).margin(4.0));
    }
    CHECK_THROWS_AS(verifying.set(cells, 4), std::invalid_argument);  // level 4 is gone
  }
}

TEST_CASE("the level table is re-applied after a reboot and replaces one left by another host",
          "[levels]") {
  // Frames: 1 IDENTIFY, 2 SET_LEVELS, 3 CONFIGURE, 4 WATCHDOG_ARM, 5 READ; the board resets at 6.
  ArrayBoard board(sim_address(25, "&reboot_at=6"));
  const std::size_t own = board.open().levels.size();
  board.configure(three_levels());
  board.activate();
  board.read({{0, 0}});
  CHECK_THROWS_AS(board.read({{0, 0}}), BoardRebootedError);
  board.identify();
  CHECK(board.info().levels.size() == own);  // the reset restored the board's own table
  board.configure(three_levels());           // what reconciliation does
  board.activate();
  CHECK(board.info().levels.size() == 4);
  CHECK(board.level_conductance_us(2) == Approx(80));

  // One host leaves a table on a board; the next one, configured without a table, gets the
  // board's own back (the table is always sent with the configuration).
  metaplast::testing::TcpSimBoard tcp(metaplast::testing::sim_options(26));
  {
    ArrayBoard first(tcp.address());
    first.open();
    first.configure(three_levels());
    first.activate();
  }
  ArrayBoard second(tcp.address());
  CHECK(second.open().levels.size() == 4);  // identify shows the table in force
  second.configure({});
  CHECK(second.info().levels.size() == own);
}

TEST_CASE("a level table outside the limits is refused before anything is sent", "[levels]") {
  const auto refused_silently = [](const std::string& address, const StationLimits& station,
                                   const BoardSettings& settings, const std::string& says) {
    ArrayBoard board(address, station);
    board.open();
    auto counter = std::make_shared<ByteCounter>();
    board.link().transport()->set_observer(counter);
    try {
      board.configure(settings);
      FAIL("accepted");
    } catch (const LimitError& e) {
      CHECK_THAT(e.what(), Catch::Contains(says));
    }
    CHECK(counter->written == 0);
    CHECK(board.state() == BoardState::connected);
  };
  StationLimits low_gate;
  low_gate.max_wl_voltage_v = 1.0;
  low_gate.max_sl_voltage_v = 3.0;
  BoardSettings s = three_levels();
  s.reset_wl_voltage_v = 1.0;
  refused_silently(sim_address(27), low_gate, s,
                   "level_gate_voltages_v[1] = 1.047 exceeds the station limit max_wl_voltage_v");
  BoardSettings uneven = three_levels();
  uneven.level_targets_us.pop_back();
  refused_silently(sim_address(27), {}, uneven, "lists 3 levels but level_targets_us 2");
  BoardSettings descending = three_levels();
  std::swap(descending.level_targets_us[0], descending.level_targets_us[1]);
  refused_silently(sim_address(27), {}, descending, "must ascend");
  StationLimits high_gate;
  high_gate.max_wl_voltage_v = 5.0;
  BoardSettings over_board = three_levels();
  over_board.level_gate_voltages_v.back() = 3.5;
  refused_silently(sim_address(27), high_gate, over_board, "board's own limit word_line_max");
  refused_silently(sim_address(27, "&level_table=0"), {}, three_levels(),
                   "no level table to set (capability LEVEL_TABLE");

  // The I_CC a gate gives is the board's to say: over max_compliance_ua, the table is refused
  // after the board answered, and the board's own table is put back.
  StationLimits low_current;
  low_current.max_compliance_ua = 50;
  ArrayBoard board(sim_address(28), low_current);
  const std::size_t own = board.open().levels.size();
  CHECK_THROWS_WITH(board.configure(three_levels()),
                    Catch::Contains("I_CC = 60 uA") && Catch::Contains("max_compliance_ua = 50") &&
                        Catch::Contains("own table is back in force"));
  CHECK(board.identify().levels.size() == own);
}
