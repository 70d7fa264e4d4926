// Weight stores against the real simulated board (in-process, the product's firmware): only
// changed levels are programmed, effective weights follow the calibrated mapping, a cell that
// cannot be programmed moves to a spare, the state survives a save/load.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <set>
#include <vector>

#include "app/board/board_session.hpp"
#include "app/hil/board_store.hpp"
#include "app/hil/chip_registry.hpp"
#include "app/hil/placement.hpp"
#include "app/hil/weight_store.hpp"
#include "app/util/thread_pool.hpp"
#include "tests/app/support/ideal_device.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast;
using hil::BoardCells;
using hil::BoardStore;
using hil::ConductanceMapping;
using hil::IdealStore;
using hil::VirtualStore;

namespace {

using metaplast::test::ideal_device;

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
  const devices::Calibration cal = devices::Calibration::defaults();
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
  const devices::Calibration cal = devices::Calibration::defaults();
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
  // The hook before a batch (where the run's journal waits for its last record to be on disk)
  // runs once, before any pulse; the one after it, once the batch is done.
  int before_calls = 0, after_calls = 0;
  cells.before_program_batch = [&] {
    ++before_calls;
    CHECK(after_calls == 0);
    const auto now = board->counters(placed);
    for (std::size_t k = 0; k < n; ++k) {
      CHECK(now[k].programming_operations() == before[k].programming_operations());
    }
  };
  cells.on_program_batch = [&](const auto&, const auto&) { ++after_calls; };
  CHECK(store.update(wq, effective) == changed.size());
  CHECK(before_calls == 1);
  CHECK(after_calls == 1);
  cells.before_program_batch = nullptr;
  cells.on_program_batch = nullptr;

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
  const devices::Calibration cal = devices::Calibration::defaults();
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

TEST_CASE("board store resume: a placed cell found bad after the checkpoint moves to a spare",
          "[weight_store]") {
  // The registry flush of a crashed epoch precedes its checkpoint, so the chip record can list a
  // cell that the last checkpoint's placement still uses.
  auto board = sim_board();
  const devices::Calibration cal = devices::Calibration::defaults();
  const learning::Quantizer q(ConductanceMapping(cal).levels());
  const auto registry = std::make_shared<hil::ChipRegistry>(
      metaplast::test::scratch_path("metaplast-weight-store", "chips"));
  const std::size_t n = 20;
  std::vector<float> wq = initial_wq(q, n), effective(n);
  hil::StateWriter out;
  std::vector<std::uint16_t> placed;
  {
    BoardCells cells(*board, board->settings(), registry, "test-chip");
    BoardStore store(q, n, cells, cal);
    store.program_all(wq, effective);
    store.save(out);
    placed = store.placement();
  }
  const std::uint16_t lost = placed[3];
  registry->update("test-chip", board->info().rows, board->info().cols, [&](hil::ChipRecord& r) {
    r.mark_bad(lost, "failed_band", "found after the checkpoint", "2026-12-06T00:00:00Z");
  });

  BoardCells cells(*board, board->settings(), registry, "test-chip");
  BoardStore store(q, n, cells, cal);
  std::vector<float> restored(n);
  hil::StateReader in(out.bytes());
  store.load(in, restored);
  CHECK(store.remapped() == 1);
  const auto moved_to = store.placement()[3];
  CHECK(moved_to != lost);
  CHECK(std::count(store.placement().begin(), store.placement().end(), lost) == 0);
  for (std::size_t k = 0; k < n; ++k) {
    INFO("weight " << k);
    if (k != 3) CHECK(store.placement()[k] == placed[k]);
    CHECK(std::abs(restored[k] - wq[k]) < 0.07f);
  }
  // The device was programmed on its new cell.
  CHECK(cells.writes_per_cell()[moved_to] > 0);
  std::filesystem::remove_all(registry->directory());
}

TEST_CASE(
    "virtual store: an ideal device gives W_Q exactly; a real one within the band, "
    "and counts pulses per device",
    "[weight_store]") {
  const devices::Calibration ideal = ideal_device();
  const learning::Quantizer q(ConductanceMapping(ideal).levels());
  const std::size_t n = 300;
  std::vector<float> wq = initial_wq(q, n), effective(n);
  VirtualStore exact(q, n, ideal, 1);
  exact.program_all(wq, effective);
  CHECK(effective == wq);

  VirtualStore noisy(q, n, devices::Calibration::defaults(), 1);
  noisy.program_all(wq, effective);
  std::size_t off_level = 0, gave_up = 0;
  const auto pulses = noisy.device_writes();
  for (std::size_t k = 0; k < n; ++k) {
    // Within the verify band, unless program-and-verify gave up after its 20 pulses (about 0.5 %
    // of the default model's devices alternate between overshoot and RESET that long).
    if (pulses[k] == hil::VerifyOptions{}.max_attempts) {
      ++gave_up;
    } else {
      CHECK(std::abs(effective[k] - wq[k]) < 0.07f);
    }
    off_level += effective[k] != wq[k];
  }
  CHECK(gave_up <= n / 50);
  CHECK(off_level > n / 2);  // the devices are not ideal
  const auto before = noisy.device_writes();
  wq[7] = q.level(q.level_index(wq[7]) == 0 ? 5 : 0);
  CHECK(noisy.update(wq, effective) == 1);
  const auto after = noisy.device_writes();
  for (std::size_t k = 0; k < n; ++k) CHECK((after[k] > before[k]) == (k == 7));
}

TEST_CASE("virtual store: save and load restore the devices exactly", "[weight_store]") {
  const devices::Calibration cal = devices::Calibration::defaults();
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

// ---------------------------------------------------------------------------------------------
// Differential pairs (G+ - G-).

namespace {

// Device levels (G+, G-) of weight level `level`.
std::pair<std::size_t, std::size_t> pair_levels(const ConductanceMapping& m, std::size_t level) {
  return {m.device_level(level, 0), m.device_level(level, 1)};
}

}  // namespace

TEST_CASE("differential pairs: 17 levels, symmetric, one device of each pair at the LCS",
          "[weight_store][differential]") {
  const devices::Calibration cal = devices::Calibration::defaults();
  const ConductanceMapping single(cal);
  const ConductanceMapping pair(cal, hil::Mapping::differential);
  const auto& levels = pair.levels();
  REQUIRE(levels.size() == 2 * single.levels().size() - 1);  // 17 from 9 device levels
  CHECK(pair.devices_per_weight() == 2);
  CHECK(levels.front() == -1.0f);
  CHECK(levels[8] == 0.0f);
  CHECK(levels.back() == 1.0f);
  for (std::size_t i = 1; i < levels.size(); ++i) CHECK(levels[i] > levels[i - 1]);
  for (std::size_t i = 0; i < levels.size(); ++i) {
    CHECK(levels[i] == -levels[levels.size() - 1 - i]);
    const auto [plus, minus] = pair_levels(pair, i);
    CHECK((plus == 0 || minus == 0));
    // w = (G+ - G-) / (G_top - G_LCS) at the medians.
    const auto& g = cal.level_medians_us();
    CHECK(levels[i] == Approx((g[plus] - g[minus]) / (g.back() - g.front())));
  }
  // As the single mapping's levels, shifted: the positive half follows the calibrated medians.
  CHECK(levels[9] - levels[8] < levels[10] - levels[9]);
  CHECK_THROWS_WITH(hil::parse_mapping("pair"), Catch::Contains("--mapping"));
}

TEST_CASE("differential virtual store: a level change programs exactly the devices that change",
          "[weight_store][differential]") {
  const devices::Calibration cal = devices::Calibration::defaults();
  const ConductanceMapping pair(cal, hil::Mapping::differential);
  const learning::Quantizer q(pair.levels());
  REQUIRE(q.size() == 17);
  const std::size_t n = 6;
  // Weight levels: +2, +2, +2, -3, 0, +8.
  std::vector<float> wq{q.level(10), q.level(10), q.level(10), q.level(5), q.level(8), q.level(16)};
  std::vector<float> effective(n);
  VirtualStore store(q, n, cal, 5, {}, hil::Mapping::differential);
  CHECK(store.devices() == 2 * n);
  store.program_all(wq, effective);
  for (std::size_t k = 0; k < n; ++k) CHECK(std::abs(effective[k] - wq[k]) < 0.07f);
  const auto before = store.device_writes();
  REQUIRE(before.size() == 2 * n);

  wq[0] = q.level(12);  // +2 -> +4: G+ only
  wq[1] = q.level(6);   // +2 -> -2: G+ to the LCS and G- up: both
  wq[2] = q.level(8);   // +2 ->  0: G+ only
  wq[3] = q.level(7);   // -3 -> -1: G- only
  // weights 4 and 5 unchanged
  CHECK(store.update(wq, effective) == 4);
  const auto after = store.device_writes();
  const std::vector<bool> expected{true,  false, true,  true,  true,  false,
                                   false, true,  false, false, false, false};
  for (std::size_t d = 0; d < 2 * n; ++d) {
    INFO("device " << d << " (weight " << d / 2 << (d % 2 ? ", G-)" : ", G+)"));
    CHECK((after[d] > before[d]) == expected[d]);
  }
  for (std::size_t k = 0; k < n; ++k) CHECK(std::abs(effective[k] - wq[k]) < 0.07f);
}

TEST_CASE("differential virtual store: noise-free devices give W_Q exactly; save/load restores",
          "[weight_store][differential]") {
  const devices::Calibration ideal = ideal_device();
  const learning::Quantizer q(ConductanceMapping(ideal, hil::Mapping::differential).levels());
  const std::size_t n = 170;
  std::vector<float> wq = initial_wq(q, n), effective(n), restored(n);
  VirtualStore exact(q, n, ideal, 1, {}, hil::Mapping::differential);
  exact.program_all(wq, effective);
  CHECK(effective == wq);
  for (std::size_t k = 0; k < n; ++k) wq[k] = q.level((k * 5 + 3) % q.size());
  exact.update(wq, effective);
  CHECK(effective == wq);

  hil::StateWriter out;
  exact.save(out);
  VirtualStore copy(q, n, ideal, 1, {}, hil::Mapping::differential);
  hil::StateReader in(out.bytes());
  copy.load(in, restored);
  CHECK(restored == effective);
  CHECK(copy.device_writes() == exact.device_writes());
}

TEST_CASE("differential board store: two cells per weight, only changed cells pulsed",
          "[weight_store][differential]") {
  auto board = sim_board();
  const devices::Calibration cal = devices::Calibration::defaults();
  const learning::Quantizer q(ConductanceMapping(cal, hil::Mapping::differential).levels());
  BoardCells cells(*board, board->settings(), nullptr, "test-chip");
  const std::size_t n = 100;
  BoardStore store(q, n, cells, cal, {}, hil::Mapping::differential);
  std::vector<float> wq = initial_wq(q, n), effective(n, 0.0f);
  store.program_all(wq, effective);
  for (std::size_t k = 0; k < n; ++k) CHECK(std::abs(effective[k] - wq[k]) < 0.07f);
  REQUIRE(store.placement().size() == 2 * n);
  CHECK(std::set<std::uint16_t>(store.placement().begin(), store.placement().end()).size() ==
        2 * n);
  CHECK(cells.free_cells() == cells.cells() - 2 * n);

  std::vector<instruments::Cell> placed;
  for (std::uint16_t c : store.placement()) placed.push_back(cells.cell(c));
  const auto before = board->counters(placed);
  const ConductanceMapping mapping(cal, hil::Mapping::differential);
  std::set<std::size_t> changed_devices;
  // Weights 3, 20, 21, 64, 99 change sign (both devices of the pair change); weight 30 goes from
  // -2 to -1 (its G- only).
  for (std::size_t k : {3, 20, 21, 30, 64, 99}) {
    const std::size_t old_level = q.level_index(wq[k]);
    const std::size_t new_level = k == 30         ? 7
                                  : old_level < 8 ? 16 - (old_level + 16) / 3
                                                  : old_level / 3;
    REQUIRE(new_level != old_level);
    wq[k] = q.level(new_level);
    for (std::size_t j = 0; j < 2; ++j) {
      if (mapping.device_level(old_level, j) != mapping.device_level(new_level, j)) {
        changed_devices.insert(2 * k + j);
      }
    }
  }
  REQUIRE(changed_devices.size() == 11);
  CHECK(store.update(wq, effective) == 6);
  const auto after = board->counters(placed);
  for (std::size_t d = 0; d < 2 * n; ++d) {
    INFO("device " << d);
    CHECK((after[d].programming_operations() > before[d].programming_operations()) ==
          (changed_devices.count(d) == 1));
  }
  for (std::size_t k = 0; k < n; ++k) CHECK(std::abs(effective[k] - wq[k]) < 0.07f);
}

TEST_CASE("differential board layers that do not fit the array are refused with the count",
          "[weight_store][differential]") {
  const devices::Calibration cal = devices::Calibration::defaults();
  const learning::Quantizer q(ConductanceMapping(cal, hil::Mapping::differential).levels());
  hil::StoreOptions options;
  options.placement = {hil::StoreKind::virtual_devices, hil::StoreKind::board};
  options.mapping = hil::Mapping::differential;
  options.device = "sim:?seed=4&formed=1";
  // The on-chip preset 784-20-10: 15,880 weights fit one device each, not two.
  CHECK_THROWS_WITH(hil::NetworkStores(options, {784 * 20, 8200}, q, cal),
                    Catch::Contains("16400 cells") && Catch::Contains("differential"));
  options.placement = {hil::StoreKind::board, hil::StoreKind::board};
  CHECK_THROWS_WITH(hil::NetworkStores(options, {784 * 20, 200}, q, cal),
                    Catch::Contains("31760 cells") && Catch::Contains("--mapping single"));
  options.mapping = hil::Mapping::single;
  const learning::Quantizer single(ConductanceMapping(cal).levels());
  CHECK_NOTHROW(hil::NetworkStores(options, {784 * 20, 200}, single, cal));
}

TEST_CASE("virtual store: the same devices and counts on one thread or two", "[weight_store]") {
  const devices::Calibration cal = devices::Calibration::defaults();
  const learning::Quantizer q(ConductanceMapping(cal).levels());
  const std::size_t n = 5000;  // above the size programmed in parallel
  struct Result {
    std::vector<float> effective;
    std::vector<std::uint32_t> pulses;
    std::uint64_t writes, reads;
  };
  const auto run = [&](int threads) {
    util::set_compute_threads(threads);
    std::vector<float> wq = initial_wq(q, n), effective(n);
    VirtualStore store(q, n, cal, 11);
    store.program_all(wq, effective);
    for (std::size_t k = 0; k < n; k += 3) wq[k] = q.level((q.level_index(wq[k]) + 4) % q.size());
    store.update(wq, effective);
    store.tick();
    store.refresh(effective);
    return Result{effective, store.device_writes(), store.writes(), store.reads()};
  };
  const Result one = run(1), two = run(2);
  util::set_compute_threads(1);
  CHECK(one.effective == two.effective);
  CHECK(one.pulses == two.pulses);
  CHECK(one.writes == two.writes);
  CHECK(one.reads == two.reads);
  CHECK(one.writes > n);  // every device programmed at least once, the changed ones again
}

TEST_CASE(
    "a store told which weights changed programs the same as one that compares all; after a "
    "load it compares all",
    "[weight_store]") {
  const devices::Calibration cal = devices::Calibration::defaults();
  const learning::Quantizer q(ConductanceMapping(cal).levels());
  const std::size_t n = 300;
  std::vector<float> wq = initial_wq(q, n), scanned_effective(n), listed_effective(n);
  VirtualStore scanned(q, n, cal, 9), listed(q, n, cal, 9);
  scanned.program_all(wq, scanned_effective);
  listed.program_all(wq, listed_effective);
  std::vector<std::uint32_t> candidates;
  for (std::uint32_t k = 0; k < n; k += 3) {
    wq[k] = q.level((k * 7 + 1 + k % 2) % q.size());
    candidates.push_back(k);
  }
  candidates.push_back(4);  // listed but unchanged: compared, not programmed
  std::sort(candidates.begin(), candidates.end());
  CHECK(listed.update(wq, listed_effective, candidates) == n / 3);
  CHECK(scanned.update(wq, scanned_effective) == n / 3);
  CHECK(listed_effective == scanned_effective);
  CHECK(listed.device_writes() == scanned.device_writes());
  CHECK(listed.writes() == scanned.writes());

  const std::vector<std::uint32_t> outside{static_cast<std::uint32_t>(n)};
  CHECK_THROWS_WITH(listed.update(wq, listed_effective, outside),
                    Catch::Contains("changed weight 300 of a store of 300"));

  // A store loaded from a checkpoint may hold levels the caller's last W_Q did not: the first
  // update compares every weight even with an empty list.
  hil::StateWriter out;
  listed.save(out);
  VirtualStore restored(q, n, cal, 9);
  std::vector<float> restored_effective(n);
  hil::StateReader in(out.bytes());
  restored.load(in, restored_effective);
  wq[1] = q.level((q.level_index(wq[1]) + 1) % q.size());
  CHECK(restored.update(wq, restored_effective, std::span<const std::uint32_t>{}) == 1);
  wq[2] = q.level((q.level_index(wq[2]) + 1) % q.size());
  CHECK(restored.update(wq, restored_effective, std::span<const std::uint32_t>{}) == 0);
}
