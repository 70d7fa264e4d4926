// Link faults and board resets: retries never program a cell twice, a reboot mid-batch is
// detected and reconciled by reading back (a resend after the reset is refused by the new boot, so
// no cell gets pulses from both boots), a dead link ends in a clear error.
#include <algorithm>
#include <catch2/catch.hpp>

#include "instruments/array_board.hpp"
#include "sim/chip.hpp"
#include "sim_boards.hpp"

using namespace metaplast::instruments;
using namespace metaplast::testing;

namespace {

RetryPolicy fast_policy() {
  RetryPolicy policy;
  policy.reply_timeout = std::chrono::milliseconds(150);
  policy.max_resends = 30;
  policy.max_reconnects = 2;
  policy.reconnect_backoff = std::chrono::milliseconds(5);
  return policy;
}

// The reboot sweeps compare a run with a reference run frame by frame, so a resend caused by a
// slow reply (a loaded machine, a sanitizer build) rather than by the reboot would shift every
// frame after it: their timeout is generous. Each position costs one timeout (the swallowed reply).
RetryPolicy reboot_policy() {
  RetryPolicy policy = fast_policy();
  policy.reply_timeout = std::chrono::milliseconds(300);
  return policy;
}

std::vector<ProgramTarget> batch_targets(std::size_t n) {
  std::vector<ProgramTarget> targets;
  for (std::size_t i = 0; i < n; ++i) {
    targets.push_back(
        {{static_cast<std::uint16_t>(20 + i / 100), static_cast<std::uint16_t>(i % 100)},
         static_cast<Level>((i * 7) % 9)});
  }
  return targets;
}

struct Outcome {
  std::vector<std::uint16_t> codes;
  std::vector<std::uint32_t> attempts;
  std::vector<std::uint16_t> array_codes;
  std::vector<std::uint64_t> counters;
  LinkStats stats;
};

Outcome program(const std::string& address, VerifyImplementation implementation) {
  ArrayBoard board(address, StationLimits::defaults(), fast_policy());
  board.open();
  board.configure({});
  board.activate();
  ProgramOptions options;
  options.band_us = 4.0;
  options.max_attempts = 30;
  options.implementation = implementation;
  Outcome out;
  for (const auto& c : board.program_and_verify(batch_targets(250), options).cells) {
    out.codes.push_back(c.final_code);
    out.attempts.push_back(c.attempts);
  }
  out.array_codes = board.read_array().codes;
  for (const auto& c : board.counters_array()) out.counters.push_back(c.programming_operations());
  out.stats = board.link_stats();
  return out;
}

// The chip as the first boot left it when it reset at request frame `reboot_frame`: the same
// session with a host that never resends (so nothing reaches the board after the reset; the
// board saves its state file at the reset). The simulated board is deterministic, so this is
// what the first boot did in any run with the same seed and the same requests.
metaplast::sim::Chip chip_at_reboot(std::uint64_t seed, std::size_t reboot_frame,
                                    const std::vector<ProgramTarget>& targets,
                                    const ProgramOptions& options) {
  const auto state = temp_path("reboot_reference.bin");
  std::filesystem::remove(state);
  RetryPolicy no_resend = reboot_policy();
  no_resend.max_resends = 0;
  no_resend.max_reconnects = 0;
  {
    ArrayBoard board(sim_address(seed, "&state=" + state.string() +
                                           "&reboot_at=" + std::to_string(reboot_frame)),
                     StationLimits::defaults(), no_resend);
    board.open();
    board.configure({});
    board.activate();
    try {
      board.program_and_verify(targets, options);
    } catch (const BoardError&) {
      // LinkError: the reset swallowed the reply and the host did not ask again.
    }
  }
  auto chip = metaplast::sim::Chip::load(state);
  std::filesystem::remove(state);
  return chip;
}

}  // namespace

TEST_CASE("with frames dropped, corrupted and delayed, program-and-verify ends as without faults") {
  for (auto implementation : {VerifyImplementation::board, VerifyImplementation::host}) {
    INFO((implementation == VerifyImplementation::board ? "board opcode" : "host loop"));
    const auto clean = program(sim_address(41), implementation);
    const auto faulty =
        program(sim_address(41, "&drop=0.05&corrupt=0.05&delay=0.03&delay_ms=400&fault_seed=3"),
                implementation);
    CHECK(faulty.stats.resends > 0);  // the faults did happen
    // Late replies (delayed past the 150 ms timeout) and their cached duplicates were discarded.
    CHECK(faulty.stats.stale_replies_discarded > 0);
    CHECK(clean.stats.resends == 0);
    CHECK(faulty.codes == clean.codes);
    CHECK(faulty.attempts == clean.attempts);
    CHECK(faulty.array_codes == clean.array_codes);
    CHECK(faulty.counters == clean.counters);  // no cell was pulsed twice by a retry
  }
}

TEST_CASE("a board reboot at any frame of a batch is detected and reconciled by reading back") {
  // The host loop: many FORM/SET/RESET/READ frames per batch. A reboot at frame k executes the
  // first half of a pulse chunk and swallows the reply; the host resends the same frame, which
  // the new boot must refuse (boot_id_mismatch) instead of executing it again.
  const auto targets = batch_targets(60);
  ProgramOptions options;
  options.band_us = 4.0;
  options.max_attempts = 20;
  options.implementation = VerifyImplementation::host;  // many frames per batch
  // Frames of the whole session without a reboot.
  std::size_t frames_before = 0, frames_total = 0;
  {
    ArrayBoard board(sim_address(43), StationLimits::defaults(), reboot_policy());
    board.open();
    board.configure({});
    board.activate();
    frames_before = board.link_stats().frames_sent;
    board.program_and_verify(targets, options);
    frames_total = board.link_stats().frames_sent;
  }
  REQUIRE(frames_total > frames_before + 5);
  const auto state = temp_path("reboot_state.bin");
  std::size_t detected = 0, reboots_after_pulses = 0;
  const std::size_t middle = (frames_before + 1 + frames_total) / 2;
  for (std::size_t k = frames_before + 1; k <= frames_total; ++k) {
    INFO("reboot at request frame " << k);
    // What the first boot did before it reset: every pulse the chip ever gets from this
    // operation must be in there (none from the second boot).
    const auto first_boot = chip_at_reboot(43, k, targets, options);
    std::filesystem::remove(state);
    const auto address =
        sim_address(43, "&state=" + state.string() + "&reboot_at=" + std::to_string(k));
    Reconciliation rec;
    std::vector<CellCounters> before;
    std::size_t finished_passed = 0, finished_total = 0;
    {
      ArrayBoard board(address, StationLimits::defaults(), reboot_policy());
      board.open();
      board.configure({});
      board.activate();
      try {
        board.program_and_verify(targets, options);
        FAIL("the reboot was not detected");
      } catch (const BoardRebootedError& e) {
        ++detected;
        CHECK(e.old_boot_id != e.new_boot_id);
        REQUIRE(e.batch.has_value());
        CHECK(board.state() == BoardState::safe);
        before = e.batch->counters_before;
        rec = reconcile_after_reboot(board, *e.batch, BoardSettings{});
        if (k == middle && !rec.remaining.empty()) {
          // The remaining work as a new batch: then every target is in band.
          const auto report = board.program_and_verify(rec.remaining, options);
          finished_passed = report.passed();
          finished_total = report.cells.size();
        }
      }
    }
    // Nothing of the interrupted operation ran on the new boot: it knows none of its batches.
    for (const auto& [id, status] : rec.batches) {
      INFO("batch " << id);
      CHECK(status == BatchStatus::unknown);
    }
    // The read-back counters are exactly those the first boot left: no cell got pulses from
    // both boots, and the counter difference is what the interrupted operation applied.
    REQUIRE(rec.cells.size() == targets.size());
    bool pulsed_by_first_boot = false;
    for (std::size_t i = 0; i < rec.cells.size(); ++i) {
      const auto& rc = rec.cells[i];
      const int index = rc.target.cell.row * 128 + rc.target.cell.col;
      const auto& at_reset = first_boot.cell(index);
      INFO("cell " << index);
      CHECK(rc.counters.set_pulses == at_reset.set_pulses);
      CHECK(rc.counters.reset_pulses == at_reset.reset_pulses);
      if (i < before.size()) {
        REQUIRE(rc.pulses_during_operation);
        CHECK(*rc.pulses_during_operation ==
              at_reset.set_pulses + at_reset.reset_pulses - before[i].programming_operations());
        pulsed_by_first_boot |= *rc.pulses_during_operation > 0;
      }
    }
    if (k == middle) {
      CHECK(finished_passed + 1 >= finished_total);
      continue;  // the chip moved on after the reconciliation
    }
    // The truth: the chip as the board saved it on close (nothing was pulsed after the
    // reconciliation, so the saved state is the state it read back).
    const auto chip = metaplast::sim::Chip::load(state);
    for (std::size_t i = 0; i < rec.cells.size(); ++i) {
      const auto& rc = rec.cells[i];
      const int index = rc.target.cell.row * 128 + rc.target.cell.col;
      const auto& truth = chip.cell(index);
      CHECK(rc.counters.set_pulses == truth.set_pulses);
      CHECK(rc.counters.reset_pulses == truth.reset_pulses);
      CHECK(truth.set_pulses == first_boot.cell(index).set_pulses);
      CHECK(truth.reset_pulses == first_boot.cell(index).reset_pulses);
      const double g_true = chip.true_conductance_us(index);
      CHECK(std::abs(rc.reading.conductance_us - g_true) <= 0.06 * g_true + 1.0);
      CHECK(rc.in_band ==
            (std::find_if(rec.remaining.begin(), rec.remaining.end(), [&](const ProgramTarget& t) {
               return t.cell == rc.target.cell;
             }) == rec.remaining.end()));
    }
    reboots_after_pulses += pulsed_by_first_boot;
  }
  CHECK(detected == frames_total - frames_before);
  CHECK(reboots_after_pulses > 3);  // most resets came after pulses had been applied
  std::filesystem::remove(state);
}

TEST_CASE("reconciliation gives the true counts of the interrupted batch") {
  // Reboot in the middle of a board PROGRAM_VERIFY request (the board executes half the entries
  // and resets without replying): the host's resend is refused by the new boot
  // (boot_id_mismatch), so the counter differences are exactly what the first boot applied.
  const auto state = temp_path("reboot_counts.bin");
  std::filesystem::remove(state);
  const auto targets = batch_targets(200);
  ProgramOptions options;
  options.band_us = 4.0;
  options.max_attempts = 20;
  std::size_t frames_before = 0;
  {
    ArrayBoard probe(sim_address(44), StationLimits::defaults(), reboot_policy());
    probe.open();
    probe.configure({});
    probe.activate();
    frames_before = probe.link_stats().frames_sent;
  }
  // frames_before + 1 is the counters snapshot, + 2 the PROGRAM_VERIFY request.
  const std::size_t reboot_frame = frames_before + 2;
  const auto first_boot = chip_at_reboot(44, reboot_frame, targets, options);
  const auto address =
      sim_address(44, "&state=" + state.string() + "&reboot_at=" + std::to_string(reboot_frame));
  Reconciliation rec;
  std::vector<std::uint64_t> true_before;
  {
    ArrayBoard board(address, StationLimits::defaults(), reboot_policy());
    board.open();
    board.configure({});
    board.activate();
    try {
      board.program_and_verify(targets, options);
      FAIL("the reboot was not detected");
    } catch (const BoardRebootedError& e) {
      REQUIRE(e.batch);
      REQUIRE(e.batch->counters_before.size() == targets.size());
      CHECK(e.batch->cells_confirmed == 0);
      rec = reconcile_after_reboot(board, *e.batch, BoardSettings{});
      REQUIRE(rec.batches.size() == 1);
      // The reset lost the batch table and the resend was refused: the new boot never saw it.
      CHECK(rec.batches[0].second == BatchStatus::unknown);
      for (const auto& c : e.batch->counters_before)
        true_before.push_back(c.programming_operations());
    }
  }
  const auto chip = metaplast::sim::Chip::load(state);
  std::size_t pulsed = 0;
  for (std::size_t i = 0; i < rec.cells.size(); ++i) {
    const auto& rc = rec.cells[i];
    const int index = rc.target.cell.row * 128 + rc.target.cell.col;
    const auto& truth = chip.cell(index);
    INFO("target " << i << ", cell " << index);
    CHECK(rc.counters.set_pulses == truth.set_pulses);
    CHECK(rc.counters.reset_pulses == truth.reset_pulses);
    // Every pulse came from the first boot: none was added by a re-execution on the second.
    CHECK(truth.set_pulses == first_boot.cell(index).set_pulses);
    CHECK(truth.reset_pulses == first_boot.cell(index).reset_pulses);
    REQUIRE(rc.pulses_during_operation);
    CHECK(*rc.pulses_during_operation == truth.set_pulses + truth.reset_pulses - true_before[i]);
    pulsed += *rc.pulses_during_operation > 0;
    // The read-back state agrees with the cell's true conductance (read noise aside).
    const double g_true = chip.true_conductance_us(index);
    CHECK(std::abs(rc.reading.conductance_us - g_true) <= 0.06 * g_true + 1.0);
  }
  CHECK(pulsed > 0);              // the first half was executed before the reset ...
  CHECK(!rec.remaining.empty());  // ... and the rest is left to do
  std::filesystem::remove(state);
}

TEST_CASE("a dead link ends in a clear error, not a hang") {
  auto options = sim_options(45);
  TcpSimBoard tcp(options);
  RetryPolicy policy = fast_policy();
  policy.max_resends = 3;
  policy.max_reconnects = 1;
  ArrayBoard board(tcp.address(), StationLimits::defaults(), policy);
  board.open();
  board.configure({});
  board.activate();
  // Cut the board's side: its firmware stops answering from the next frame on.
  auto sim_dead = sim_options(46);
  sim_dead.faults.dead_after_frames = 4;
  TcpSimBoard dead(sim_dead);
  ArrayBoard board2(dead.address(), StationLimits::defaults(), policy);
  board2.open();         // frame 1: identify
  board2.configure({});  // frames 2-4: level table, configuration, watchdog
  board2.activate();
  try {
    board2.read_array();
    FAIL("a dead link must end in an error");
  } catch (const LinkError& e) {
    const std::string what = e.what();
    CHECK(what.find("no valid reply") != std::string::npos);
    CHECK(what.find(dead.address()) != std::string::npos);
  }
  CHECK(board2.state() == BoardState::closed);
  // The healthy board is unaffected.
  CHECK(board.read_array().codes.size() == 128u * 128u);
}

TEST_CASE("a dropped link is reopened and the board re-identified") {
  TcpSimBoard tcp(sim_options(47));
  ArrayBoard board(tcp.address(), StationLimits::defaults(), fast_policy());
  const auto boot = board.open().boot_id;
  board.configure({});
  board.activate();
  const auto first = board.read({{3, 3}});
  board.link().transport()->close();  // cable pulled
  const auto again = board.read({{3, 3}});
  CHECK(again.size() == 1);
  CHECK(board.link_stats().reconnects == 1);
  CHECK(board.info().boot_id == boot);
  CHECK(board.state() == BoardState::active);
}
