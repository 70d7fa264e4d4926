// The board weight store: a layer's weights on cells of a 128 x 128 array board, programmed with
// the board's program-and-verify, read back through instruments::ArrayBoard.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/hil/chip_registry.hpp"
#include "app/hil/weight_store.hpp"
#include "instruments/array_board.hpp"

namespace metaplast::hil {

// A board reboot the run recovered from (journaled, docs/run-records.md). `cells`/`pulses`: the
// pulses the board applied during the interrupted program-and-verify tries (its counters minus the
// host's expectation), added to those cells' next batch; empty when nothing was pulsing.
struct RebootReconciled {
  std::string operation;
  std::uint32_t old_boot_id = 0, new_boot_id = 0;
  std::vector<std::uint32_t> cells;  // row-major indices
  std::vector<std::uint32_t> pulses;
};

// What the board layers of one run share: the board, which cells are taken or bad, per-cell
// counts, and the chip's registry record (bad-cell map, cumulative writes).
//
// Board reboots: every board request made through this class survives a reboot of the board
// (any request: IDENTIFY, CONFIGURE, READ, READ_COUNTERS, program-and-verify chunks, BATCH_STATUS):
// the board is identified, configured and activated again and the operation is repeated, up to
// kMaxRebootsInARow reboots in a row. Pulses applied by an interrupted program-and-verify are
// recovered per cell from the board's counters against the host's expectation of them (set by
// counters_now(), advanced by every counted pulse), so writes_per_cell() stays equal to the
// board's counter increments.
class BoardCells {
 public:
  // `board` must be open (activate() configures it with `settings`). `registry` may be null (no
  // chip record kept). Cells already in the chip's bad-cell map are never used.
  BoardCells(instruments::ArrayBoard& board, instruments::BoardSettings settings,
             std::shared_ptr<ChipRegistry> registry, std::string chip_id);

  instruments::ArrayBoard& board() { return board_; }
  // Configures the board with the settings and activates it (through reboots).
  void activate();
  std::size_t cells() const { return taken_.size(); }
  instruments::Cell cell(std::uint32_t index) const;

  // The next free cell that is not bad (row-major order), taken; nothing when the array is full.
  std::optional<std::uint32_t> allocate();
  // Takes a specific cell (restoring a placement). Throws std::runtime_error if it is outside
  // the array, bad or taken already.
  void take(std::uint32_t index);
  // Marks a cell bad (this run and the chip record); it stays taken.
  void mark_bad(std::uint32_t index, const std::string& reason, const std::string& detail);
  bool is_bad(std::uint32_t index) const { return index < bad_.size() && bad_[index] != 0; }
  std::size_t free_cells() const;

  static constexpr int kMaxRebootsInARow = 8;

  // One batched program-and-verify; a board reboot in the middle is reconciled (the pulses the
  // board applied, from its counters; the batch verified again: cells in band take no pulse).
  // Counts pulses and reads per cell; a result's `attempts` include the pulses of interrupted
  // tries.
  instruments::ProgramReport program(const std::vector<instruments::ProgramTarget>& targets,
                                     const VerifyOptions& verify);
  std::vector<instruments::CellReading> read(const std::vector<instruments::Cell>& cells);
  // The board's SET + RESET counters of every cell now (row-major); they become the host's
  // expectation from which the pulses of an interrupted batch are recovered. Empty when the
  // board has no counters. Cells whose counter differs from the expectation (something else
  // pulsed the chip) are reported in a warning.
  std::vector<std::uint64_t> counters_now();

  std::vector<std::uint32_t>& writes_per_cell() { return writes_; }
  std::vector<std::uint32_t>& reads_per_cell() { return reads_; }
  // Restores counts from a checkpoint (already in the chip record: not flushed again).
  void restore_counts(std::vector<std::uint32_t> writes, std::vector<std::uint32_t> reads) {
    writes_ = std::move(writes);
    reads_ = std::move(reads);
    flushed_writes_ = writes_;
  }
  const std::vector<BadCellRecord>& new_bad_cells() const { return new_bad_; }
  std::uint64_t reboots_reconciled() const { return reboots_; }

  // Called before every batched program-and-verify starts (the run's journal waits there for the
  // last batch's record to be on disk). Exceptions propagate.
  std::function<void()> before_program_batch;
  // Called after every batched program-and-verify returns, before program() does (the run's
  // journal, app/hil/journal.hpp). Exceptions propagate.
  std::function<void(const std::vector<instruments::ProgramTarget>&,
                     const instruments::ProgramReport&)>
      on_program_batch;
  // Called after every reboot recovered from (the run's journal). Exceptions propagate.
  std::function<void(const RebootReconciled&)> on_reboot;

  // Board cells taken by this session (placed weights' devices, bad cells among them).
  std::size_t taken_cells() const;

  // Adds this session's writes since the last flush to the chip record (and the new bad cells),
  // with a session whose "cells" is taken_cells(): board cells, not network weights.
  void flush_registry(const std::string& kind);

 private:
  instruments::ArrayBoard& board_;
  instruments::BoardSettings settings_;
  std::shared_ptr<ChipRegistry> registry_;
  std::string chip_id_;
  std::vector<std::uint8_t> taken_, bad_;
  std::vector<std::uint32_t> writes_, reads_, flushed_writes_;
  std::vector<BadCellRecord> new_bad_;
  std::size_t new_bad_flushed_ = 0;
  std::uint32_t next_ = 0;
  std::uint64_t reboots_ = 0;
  // The board's SET + RESET counter each cell should show (empty: unknown, see counters_now()).
  std::vector<std::uint64_t> expected_counters_;

  // Runs `operation` (board requests); on a reboot: recover(), journal it, run it again.
  template <class Operation>
  auto with_reboot_recovery(const char* what, Operation&& operation) -> decltype(operation()) {
    for (int reboots = 0;; ++reboots) {
      try {
        return operation();
      } catch (const instruments::BoardRebootedError& e) {
        const RebootReconciled event = recover(e, what, reboots);
        if (on_reboot) on_reboot(event);
      }
    }
  }
  // Identifies, configures and activates the board again (through further reboots); throws
  // std::runtime_error when the board reset more than kMaxRebootsInARow times in a row.
  RebootReconciled recover(const instruments::BoardRebootedError& e, const char* what,
                           int reboots_in_a_row);
  // Per target: the pulses the board counted beyond expected_counters_ (zeros if unknown).
  std::vector<std::uint32_t> uncounted_pulses(
      const std::vector<instruments::ProgramTarget>& targets);
  std::uint32_t index_of(const instruments::Cell& cell) const {
    return static_cast<std::uint32_t>(cell.row) * board_.info().cols + cell.col;
  }
};

// One layer on board cells: one cell per weight (single mapping) or two (differential pairs,
// see ConductanceMapping). A level change programs only the cells whose own level changes. A cell
// that fails program-and-verify (or was never formed) goes into the bad-cell map and its device
// moves to a spare cell; with no spare left the device keeps what its cell reads. Cells are
// allocated at the first programming.
class BoardStore final : public WeightStore {
 public:
  // Throws std::invalid_argument when the quantizer does not match the calibration and mapping,
  // or the board has fewer levels than the calibration.
  BoardStore(const learning::Quantizer& quantizer, std::size_t weights, BoardCells& cells,
             const devices::Calibration& calibration, VerifyOptions verify = {},
             Mapping mapping = Mapping::single);
  StoreKind kind() const override { return StoreKind::board; }
  std::size_t devices() const override { return cell_of_device_.size(); }
  std::vector<std::uint32_t> device_writes() const override;
  void refresh(std::span<float> effective) override;
  // The cell of every device (weight k's devices at k * devices_per_weight + j).
  const std::vector<std::uint16_t>& placement() const { return cell_of_device_; }
  std::uint64_t remapped() const { return remapped_; }

 private:
  void program(std::span<const std::uint32_t> indices, std::span<float> effective) override;
  void save_devices(StateWriter& out) const override;
  // Re-reads the placed cells and reprograms those out of band (the board may have been used or
  // powered off meanwhile).
  void load_devices(StateReader& in, std::span<float> effective) override;
  void place_all();
  // One batched program-and-verify of these devices to device_levels_ (spares on failure).
  void program_devices(std::vector<std::uint32_t> devices);
  void set_effective(std::span<float> effective, std::size_t k) const {
    effective[k] = mapping_.weight_of(&last_read_us_[k * mapping_.devices_per_weight()]);
  }

  BoardCells& cells_;
  ConductanceMapping mapping_;
  VerifyOptions verify_;
  std::vector<std::uint16_t> cell_of_device_;
  std::vector<std::uint16_t> device_levels_;  // kUnprogrammed until first programmed
  std::vector<float> last_read_us_;           // per device
  std::uint64_t remapped_ = 0;
  bool placed_ = false;
};

}  // namespace metaplast::hil
