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

// What the board layers of one run share: the board, which cells are taken or bad, per-cell
// counts, and the chip's registry record (bad-cell map, cumulative writes).
class BoardCells {
 public:
  // `board` must be active. `registry` may be null (no chip record kept). Cells already in the
  // chip's bad-cell map are never used.
  BoardCells(instruments::ArrayBoard& board, instruments::BoardSettings settings,
             std::shared_ptr<ChipRegistry> registry, std::string chip_id);

  instruments::ArrayBoard& board() { return board_; }
  std::size_t cells() const { return taken_.size(); }
  instruments::Cell cell(std::uint32_t index) const;

  // The next free cell that is not bad (row-major order), taken; nothing when the array is full.
  std::optional<std::uint32_t> allocate();
  // Takes a specific cell (restoring a placement). Throws std::runtime_error if it is bad.
  void take(std::uint32_t index);
  // Marks a cell bad (this run and the chip record); it stays taken.
  void mark_bad(std::uint32_t index, const std::string& reason, const std::string& detail);
  bool is_bad(std::uint32_t index) const { return bad_[index] != 0; }
  std::size_t free_cells() const;

  // One batched program-and-verify; a board reboot in the middle is reconciled (read back,
  // remaining cells programmed again). Counts pulses and reads per cell.
  instruments::ProgramReport program(const std::vector<instruments::ProgramTarget>& targets,
                                     const VerifyOptions& verify);
  std::vector<instruments::CellReading> read(const std::vector<instruments::Cell>& cells);

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

  // Called after every batched program-and-verify returns, before program() does (the run's
  // journal, app/hil/journal.hpp). Exceptions propagate.
  std::function<void(const std::vector<instruments::ProgramTarget>&,
                     const instruments::ProgramReport&)>
      on_program_batch;

  // Adds this session's writes since the last flush to the chip record (and the new bad cells).
  void flush_registry(const std::string& kind, std::size_t cells_used);

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
             const sim::Calibration& calibration, VerifyOptions verify = {},
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
