// Weight stores against the real simulated board (in-process, the product's firmware): only
// changed levels are programmed, effective weights follow the calibrated mapping, a cell that
// cannot be programmed moves to a spare, the state survives a save/load.
#include <catch2/catch.hpp>
#include <set>
#include <vector>

#include "app/board/board_session.hpp"
#include "app/hil/board_store.hpp"
#include "app/hil/weight_store.hpp"

using namespace metaplast;
using hil::BoardCells;
using hil::BoardStore;
using hil::ConductanceMapping;
using hil::IdealStore;
using hil::VirtualStore;

namespace {

// A noise-free device: no spreads, no read noise, no relaxation, no defects.
sim::Calibration ideal_device() {
  sim::Calibration c = sim::Calibration::defaults();
  for (auto& level : c.hcs_levels) {
    level.c2c_sigma_us = 0.0;
    level.d2d_sigma_rel = 0.0;
  }
  c.lcs.c2c_sigma_ln = 0.0;
  c.lcs.d2d_sigma_ln = 0.0;
  c.read_noise.relative = 0.0;
  c.read_noise.absolute_us = 0.0;
  c.relaxation.enabled = false;
  c.yield.defect_fraction = 0.0;
  return c;
}

// Weights spread over every level, deterministic.
std::vector<float> initial_wq(const learning::Quantizer& q, std::size_t n) {
  std::vector<float> wq(n);
  for (std::size_t k = 0; k < n; ++k) wq[k] = q.level((k * 7) % q.size());
  return wq;
}

std::unique_ptr<instruments::ArrayBoard> sim_board(const std::string& extra = "") {
  board::SessionOptions session;
  session.device = "sim:?seed=4&formed=1" + extra;
  return board::open_active_board(session);
}

}  // namespace

TEST_CASE("calibrated levels: the medians map onto [-1, 1], non-uniform", "[weight_store]") {
  const sim::Calibration cal = sim::Calibration::defaults();
  const ConductanceMapping mapping(cal);
  const auto& levels = mapping.levels();
  REQUIRE(levels.size() == cal.level_medians_us().size());
  CHECK(levels.front() == -1.0f);
  CHECK(levels.back() == 1.0f);
  for (std::size_t i = 1; i < levels.size(); ++i) CHECK(levels[i] > levels[i - 1]);
  // LCS -> level 1 is a smaller step than level 1 -> 2 (3 -> 20 uS vs 20 -> 40 uS).
  CHECK(levels[1] - levels[0] < levels[2] - levels[1]);
  CHECK(mapping.weight(cal.level_medians_us()[4]) == Approx(levels[4]));
}

TEST_CASE("ideal store: effective weights are W_Q; only level changes count", "[weight_store]") {
  const learning::Quantizer q = learning::Quantizer::uniform(9);
  const std::size_t n = 50;
  IdealStore store(q, n);
  std::vector<float> wq = initial_wq(q, n), effective(n, 0.0f);
  store.program_all(wq, effective);
  CHECK(effective == wq);
  const auto initial = store.writes();
  wq[3] = q.level(0);
  wq[10] = q.level(8);
  wq[11] = wq[11];  // unchanged
  CHECK(store.update(wq, effective) == (wq[3] != q.level(21 % 9) ? 1u : 0u) + 1u);
  CHECK(effective == wq);
  CHECK(store.writes() > initial);
}

TEST_CASE("board store: a scripted step changing k weights programs exactly those k cells",
          "[weight_store]") {
  auto board = sim_board();
  const sim::Calibration cal = sim::Calibration::defaults();
  const learning::Quantizer q(ConductanceMapping(cal).levels());
  BoardCells cells(*board, board->settings(), nullptr, "test-chip");
  const std::size_t n = 200;
  BoardStore store(q, n, cells, cal);
  const auto factory = board->counters_array();  // forming at the factory counts too
  std::vector<float> wq = initial_wq(q, n), effective(n, 0.0f);
  store.program_all(wq, effective);
  for (std::size_t k = 0; k < n; ++k) {
    // Within the verify band (5 uS of 157 uS span -> 0.064 in weight units).
    CHECK(std::abs(effective[k] - wq[k]) < 0.07f);
  }

  std::vector<instruments::Cell> placed;
  for (std::uint16_t c : store.placement()) placed.push_back(cells.cell(c));
  const auto before = board->counters(placed);

  const std::set<std::size_t> changed{5, 17, 42, 99, 150, 151, 199};
  for (std::size_t k : changed) {
    const std::size_t level = q.level_index(wq[k]);
    wq[k] = q.level(level == 0 ? 8 : 0);  // far from the old level: needs pulses
  }
  CHECK(store.update(wq, effective) == changed.size());

  const auto after = board->counters(placed);
  std::size_t pulsed = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const bool got_pulses = after[k].programming_operations() > before[k].programming_operations();
    pulsed += got_pulses;
    INFO("weight " << k);
    CHECK(got_pulses == (changed.count(k) == 1));
  }
  CHECK(pulsed == changed.size());
  for (std::size_t k : changed) CHECK(std::abs(effective[k] - wq[k]) < 0.07f);
  // The store's per-cell counts are the board's counters.
  const auto writes = store.device_writes();
  for (std::size_t k = 0; k < n; ++k) {
    CHECK(writes[k] == after[k].programming_operations() -
                           factory[store.placement()[k]].programming_operations());
  }
}

TEST_CASE("board store: a stuck cell goes to the bad-cell list and its weight to a spare",
          "[weight_store]") {
  // Cell 0 is stuck: the first weight lands on it and cannot reach the top level.
  auto board = sim_board("&stuck=0");
  const sim::Calibration cal = sim::Calibration::defaults();
  const learning::Quantizer q(ConductanceMapping(cal).levels());
  BoardCells cells(*board, board->settings(), nullptr, "test-chip");
  BoardStore store(q, 4, cells, cal);
  std::vector<float> wq{q.level(8), q.level(0), q.level(8), q.level(0)}, effective(4);
  store.program_all(wq, effective);
  // Whether stuck at HCS or LCS, one of two opposite targets fails; program both.
  wq[0] = q.level(0);
  store.update(wq, effective);
  CHECK(cells.is_bad(0));
  CHECK(store.placement()[0] != 0);
  CHECK(store.remapped() == 1);
  REQUIRE(cells.new_bad_cells().size() == 1);
  CHECK(cells.new_bad_cells()[0].cell == 0);
  CHECK(std::abs(effective[0] - wq[0]) < 0.07f);
}

TEST_CASE(
    "virtual store: an ideal device gives W_Q exactly; a real one within the band, "
    "and counts pulses per device",
    "[weight_store]") {
  const sim::Calibration ideal = ideal_device();
  const learning::Quantizer q(ConductanceMapping(ideal).levels());
  const std::size_t n = 300;
  std::vector<float> wq = initial_wq(q, n), effective(n);
  VirtualStore exact(q, n, ideal, 1);
  exact.program_all(wq, effective);
  CHECK(effective == wq);

  VirtualStore noisy(q, n, sim::Calibration::defaults(), 1);
  noisy.program_all(wq, effective);
  std::size_t off_level = 0;
  for (std::size_t k = 0; k < n; ++k) {
    CHECK(std::abs(effective[k] - wq[k]) < 0.07f);
    off_level += effective[k] != wq[k];
  }
  CHECK(off_level > n / 2);  // the devices are not ideal
  const auto before = noisy.device_writes();
  wq[7] = q.level(q.level_index(wq[7]) == 0 ? 5 : 0);
  CHECK(noisy.update(wq, effective) == 1);
  const auto after = noisy.device_writes();
  for (std::size_t k = 0; k < n; ++k) CHECK((after[k] > before[k]) == (k == 7));
}

TEST_CASE("virtual store: save and load restore the devices exactly", "[weight_store]") {
  const sim::Calibration cal = sim::Calibration::defaults();
  const learning::Quantizer q(ConductanceMapping(cal).levels());
  const std::size_t n = 100;
  std::vector<float> wq = initial_wq(q, n), a(n), b(n);
  VirtualStore first(q, n, cal, 3);
  first.program_all(wq, a);
  hil::StateWriter out;
  first.save(out);
  VirtualStore second(q, n, cal, 3);
  hil::StateReader in(out.bytes());
  second.load(in, b);
  CHECK(a == b);
  wq[1] = q.level(q.level_index(wq[1]) == 0 ? 8 : 0);
  first.update(wq, a);
  second.update(wq, b);
  CHECK(a == b);
  CHECK(first.writes() == second.writes());
}
