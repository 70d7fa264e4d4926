#include "app/hil/board_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/clock.hpp"
#include "protocols/board_messages.hpp"
#include "protocols/verify_rule.hpp"

namespace metaplast::hil {

namespace ins = instruments;

BoardCells::BoardCells(ins::ArrayBoard& board, ins::BoardSettings settings,
                       std::shared_ptr<ChipRegistry> registry, std::string chip_id)
    : board_(board),
      settings_(settings),
      registry_(std::move(registry)),
      chip_id_(std::move(chip_id)),
      taken_(board.info().cells(), 0),
      bad_(board.info().cells(), 0),
      writes_(board.info().cells(), 0),
      reads_(board.info().cells(), 0),
      flushed_writes_(board.info().cells(), 0) {
  if (registry_) {
    if (auto record = registry_->load(chip_id_)) {
      for (const auto& [index, bad] : record->bad_cells) {
        if (index < bad_.size()) bad_[index] = 1;
      }
    }
  }
}

void BoardCells::activate() {
  with_reboot_recovery("configure", [&] {
    board_.configure(settings_);
    board_.activate();
  });
}

ins::Cell BoardCells::cell(std::uint32_t index) const {
  const std::uint16_t cols = board_.info().cols;
  return {static_cast<std::uint16_t>(index / cols), static_cast<std::uint16_t>(index % cols)};
}

std::optional<std::uint32_t> BoardCells::allocate() {
  while (next_ < taken_.size() && (taken_[next_] || bad_[next_])) ++next_;
  if (next_ == taken_.size()) return std::nullopt;
  taken_[next_] = 1;
  return next_++;
}

void BoardCells::take(std::uint32_t index) {
  if (index >= taken_.size() || bad_[index] || taken_[index]) {
    throw std::runtime_error(
        "checkpoint placement uses cell " + std::to_string(index) +
        ", which is outside the array, in the chip's bad-cell map or placed twice");
  }
  taken_[index] = 1;
}

std::size_t BoardCells::taken_cells() const {
  return static_cast<std::size_t>(std::count(taken_.begin(), taken_.end(), std::uint8_t{1}));
}

std::size_t BoardCells::free_cells() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < taken_.size(); ++i) n += !taken_[i] && !bad_[i];
  return n;
}

void BoardCells::mark_bad(std::uint32_t index, const std::string& reason,
                          const std::string& detail) {
  if (bad_[index]) return;
  bad_[index] = 1;
  new_bad_.push_back({index, reason, detail, common::utc_now_iso8601()});
}

ins::ProgramReport BoardCells::program(const std::vector<ins::ProgramTarget>& targets,
                                       const VerifyOptions& verify) {
  if (before_program_batch) before_program_batch();
  ins::ProgramOptions options;
  options.band_us = verify.band_us;
  options.max_attempts = verify.max_attempts;
  // One READ_COUNTERS per 400 cells would cost a round trip per step; after a reboot the pulses
  // applied come from the counters against expected_counters_, and the batch is verified again
  // (cells in band take no pulse).
  options.snapshot_counters = false;
  std::vector<std::uint32_t> interrupted(targets.size(), 0);  // pulses of interrupted tries
  ins::ProgramReport report;
  for (int reboots = 0;; ++reboots) {
    try {
      report = board_.program_and_verify(targets, options);
      break;
    } catch (const ins::BoardRebootedError& e) {
      RebootReconciled event = recover(e, "program-and-verify", reboots);
      const auto pulses = uncounted_pulses(targets);
      for (std::size_t i = 0; i < targets.size(); ++i) {
        interrupted[i] += pulses[i];
        if (pulses[i] == 0) continue;
        event.cells.push_back(index_of(targets[i].cell));
        event.pulses.push_back(pulses[i]);
      }
      if (on_reboot) on_reboot(event);
    }
  }
  for (std::size_t i = 0; i < report.cells.size(); ++i) {
    auto& c = report.cells[i];
    c.attempts += interrupted[i];
    const std::uint32_t index = index_of(c.cell);
    writes_[index] += c.attempts;
    reads_[index] += c.attempts + 1;
    // The interrupted tries' pulses are in the expectation already (uncounted_pulses).
    if (!expected_counters_.empty()) expected_counters_[index] += c.attempts - interrupted[i];
  }
  if (on_program_batch) on_program_batch(targets, report);
  return report;
}

std::vector<ins::CellReading> BoardCells::read(const std::vector<ins::Cell>& cells) {
  for (const auto& c : cells) ++reads_[index_of(c)];
  return with_reboot_recovery("read", [&] { return board_.read(cells); });
}

std::vector<std::uint64_t> BoardCells::counters_now() {
  if (!board_.info().has(protocols::capability::kCounters)) return {};
  const auto counters =
      with_reboot_recovery("read counters", [&] { return board_.counters_array(); });
  std::vector<std::uint64_t> out(cells(), 0);
  for (const auto& c : counters) out[index_of(c.cell)] = c.programming_operations();
  if (!expected_counters_.empty()) {
    std::uint64_t uncounted = 0, cells_off = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i] == expected_counters_[i]) continue;
      ++cells_off;
      uncounted += out[i] > expected_counters_[i] ? out[i] - expected_counters_[i] : 0;
    }
    if (cells_off > 0) {
      spdlog::warn(
          "board {}: the counters of {} cells differ from the pulses this run counted ({} "
          "pulses more on the board); was the chip pulsed by another program meanwhile?",
          board_.address(), cells_off, uncounted);
    }
  }
  expected_counters_ = out;
  return out;
}

RebootReconciled BoardCells::recover(const ins::BoardRebootedError& e, const char* what,
                                     int reboots_in_a_row) {
  RebootReconciled event;
  event.operation = what;
  event.old_boot_id = e.old_boot_id;
  for (int again = reboots_in_a_row;; ++again) {
    if (again >= kMaxRebootsInARow) {
      throw std::runtime_error("board at " + board_.address() + " reset " +
                               std::to_string(again + 1) + " times in a row during " + what +
                               " (last: " + e.what() +
                               "); check its power supply and cabling, then continue with "
                               "--resume");
    }
    ++reboots_;
    spdlog::warn("board rebooted during {}: identifying, configuring and repeating it", what);
    try {
      board_.identify();
      board_.configure(settings_);
      board_.activate();
      event.new_boot_id = board_.info().boot_id;
      return event;
    } catch (const ins::BoardRebootedError&) {
      // Reset again while coming back up: once more.
    }
  }
}

std::vector<std::uint32_t> BoardCells::uncounted_pulses(
    const std::vector<ins::ProgramTarget>& targets) {
  std::vector<std::uint32_t> pulses(targets.size(), 0);
  if (expected_counters_.empty() || !board_.info().has(protocols::capability::kCounters)) {
    spdlog::warn(
        "board {}: no counter baseline; the pulses of the interrupted program-and-verify are "
        "not counted",
        board_.address());
    return pulses;
  }
  std::vector<ins::Cell> cells;
  cells.reserve(targets.size());
  for (const auto& t : targets) cells.push_back(t.cell);
  const auto counters =
      with_reboot_recovery("read counters", [&] { return board_.counters(cells); });
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const std::uint32_t index = index_of(cells[i]);
    const std::uint64_t now = counters[i].programming_operations();
    // A cell listed twice: its pulses are counted at its first entry.
    if (now > expected_counters_[index]) {
      pulses[i] = static_cast<std::uint32_t>(now - expected_counters_[index]);
    }
    expected_counters_[index] = now;
  }
  return pulses;
}

void BoardCells::flush_registry(const std::string& kind) {
  if (!registry_) return;
  const auto& info = board_.info();
  registry_->update(chip_id_, info.rows, info.cols, [&](ChipRecord& record) {
    std::uint64_t session_writes = 0;
    for (std::size_t i = 0; i < writes_.size(); ++i) {
      const std::uint64_t delta = writes_[i] - flushed_writes_[i];
      if (delta > 0) record.add_writes(static_cast<std::uint32_t>(i), delta);
      session_writes += delta;
    }
    for (std::size_t i = new_bad_flushed_; i < new_bad_.size(); ++i) {
      const auto& b = new_bad_[i];
      record.mark_bad(b.cell, b.reason, b.detail, b.date);
    }
    ChipSession session;
    session.date = common::utc_now_iso8601();
    session.kind = kind;
    session.board_model = info.model;
    session.board_serial = info.serial;
    session.cells = taken_cells();
    session.writes = session_writes;
    record.sessions.push_back(session);
  });
  flushed_writes_ = writes_;
  new_bad_flushed_ = new_bad_.size();
}

// ---------------------------------------------------------------------------------------------

BoardStore::BoardStore(const learning::Quantizer& quantizer, std::size_t weights, BoardCells& cells,
                       const devices::Calibration& calibration, VerifyOptions verify, Mapping mapping)
    : WeightStore(quantizer, weights),
      cells_(cells),
      mapping_(calibration, mapping),
      verify_(verify),
      cell_of_device_(weights * mapping_.devices_per_weight(), 0),
      device_levels_(weights * mapping_.devices_per_weight(), kUnprogrammed),
      last_read_us_(weights * mapping_.devices_per_weight(), 0.0f) {
  if (quantizer.size() != mapping_.levels().size()) {
    throw std::invalid_argument("board weight store: the quantizer has " +
                                std::to_string(quantizer.size()) + " levels, the calibration (" +
                                std::string(to_string(mapping)) + " mapping) " +
                                std::to_string(mapping_.levels().size()));
  }
  const std::size_t board_levels = cells.board().info().levels.size();
  if (board_levels < calibration.level_medians_us().size()) {
    throw std::invalid_argument("board weight store: the board has " +
                                std::to_string(board_levels) + " conductance levels, the " +
                                "calibration " +
                                std::to_string(calibration.level_medians_us().size()) +
                                ": characterise the board with the level table in force "
                                "(level_gate_voltages_v) and train with that calibration, or "
                                "use a table with as many levels (docs/bench.md, \"The level "
                                "table\")");
  }
}

void BoardStore::place_all() {
  if (cells_.free_cells() < devices()) {
    throw std::runtime_error(
        "board weight store: " + std::to_string(size()) + " weights need " +
        std::to_string(devices()) + " cells (" + std::string(to_string(mapping_.mapping())) +
        " mapping) but the array has " + std::to_string(cells_.free_cells()) +
        " free cells (bad cells excluded); put fewer layers on the board (--placement), use "
        "--mapping single or a smaller network");
  }
  for (auto& cell : cell_of_device_) cell = static_cast<std::uint16_t>(*cells_.allocate());
}

void BoardStore::program(std::span<const std::uint32_t> indices, std::span<float> effective) {
  if (!placed_) {
    place_all();
    placed_ = true;
  }
  const std::size_t per_weight = mapping_.devices_per_weight();
  std::vector<std::uint32_t> changed;
  changed.reserve(indices.size() * per_weight);
  for (std::uint32_t k : indices) {
    for (std::size_t j = 0; j < per_weight; ++j) {
      const std::size_t d = k * per_weight + j;
      const auto level = static_cast<std::uint16_t>(mapping_.device_level(levels_[k], j));
      if (device_levels_[d] == level) continue;
      device_levels_[d] = level;
      changed.push_back(static_cast<std::uint32_t>(d));
    }
  }
  program_devices(std::move(changed));
  for (std::uint32_t k : indices) set_effective(effective, k);
}

void BoardStore::program_devices(std::vector<std::uint32_t> pending) {
  std::vector<std::uint32_t> next;
  std::vector<ins::ProgramTarget> targets;
  for (int round = 0; !pending.empty(); ++round) {
    targets.clear();
    for (std::uint32_t d : pending) {
      targets.push_back(
          {cells_.cell(cell_of_device_[d]), static_cast<ins::Level>(device_levels_[d])});
    }
    const ins::ProgramReport report = cells_.program(targets, verify_);
    next.clear();
    for (std::size_t i = 0; i < pending.size(); ++i) {
      const std::uint32_t d = pending[i];
      const auto& r = report.cells[i];
      writes_ += r.attempts;
      reads_ += r.attempts + 1;
      last_read_us_[d] = static_cast<float>(r.final_conductance_us);
      if (r.passed) continue;
      const std::uint32_t cell = cell_of_device_[d];
      cells_.mark_bad(cell, r.not_formed ? "unformable" : "failed_band",
                      "train: level " + std::to_string(device_levels_[d]) + " not reached in " +
                          std::to_string(r.attempts) + " pulses (read " +
                          std::to_string(r.final_conductance_us) + " uS)");
      const auto spare = round < 4 ? cells_.allocate() : std::nullopt;
      if (!spare) {
        spdlog::warn(
            "board weight store: no spare cell for the device on cell {}; it keeps "
            "{:.1f} uS",
            cell, r.final_conductance_us);
        continue;
      }
      cell_of_device_[d] = static_cast<std::uint16_t>(*spare);
      ++remapped_;
      next.push_back(d);
    }
    pending.swap(next);
  }
}

void BoardStore::refresh(std::span<float> effective) {
  std::vector<ins::Cell> cells;
  cells.reserve(devices());
  for (std::uint16_t c : cell_of_device_) cells.push_back(cells_.cell(c));
  const auto readings = cells_.read(cells);
  for (std::size_t d = 0; d < devices(); ++d) {
    last_read_us_[d] = static_cast<float>(readings[d].conductance_us);
  }
  for (std::size_t k = 0; k < size(); ++k) set_effective(effective, k);
  reads_ += devices();
}

std::vector<std::uint32_t> BoardStore::device_writes() const {
  auto& writes = const_cast<BoardCells&>(cells_).writes_per_cell();
  std::vector<std::uint32_t> out;
  out.reserve(devices());
  for (std::uint16_t c : cell_of_device_) out.push_back(writes[c]);
  return out;
}

void BoardStore::save_devices(StateWriter& out) const {
  out.array(cell_of_device_);
  out.array(last_read_us_);
  out.pod(remapped_);
}

void BoardStore::load_devices(StateReader& in, std::span<float> effective) {
  cell_of_device_ = in.array<std::uint16_t>(devices());
  last_read_us_ = in.array<float>(devices());
  remapped_ = in.pod<std::uint64_t>();
  placed_ = true;
  // A placed cell can have entered the chip's bad-cell map after the checkpoint (found bad later
  // in the crashed epoch, whose registry flush precedes its checkpoint, or by another session):
  // its device moves to a spare cell and is programmed there.
  std::vector<std::uint32_t> moved;
  for (std::size_t d = 0; d < devices(); ++d) {
    if (cells_.is_bad(cell_of_device_[d])) {
      moved.push_back(static_cast<std::uint32_t>(d));
    } else {
      cells_.take(cell_of_device_[d]);
    }
  }
  for (std::uint32_t d : moved) {
    const auto spare = cells_.allocate();
    if (!spare) {
      throw std::runtime_error("resume: cell " + std::to_string(cell_of_device_[d]) +
                               " of the checkpoint's placement is now in the chip's bad-cell map "
                               "and the array has no spare cell for it");
    }
    spdlog::info("resume: cell {} is in the chip's bad-cell map now; its device moves to cell {}",
                 cell_of_device_[d], *spare);
    cell_of_device_[d] = static_cast<std::uint16_t>(*spare);
    ++remapped_;
  }
  const std::size_t per_weight = mapping_.devices_per_weight();
  for (std::size_t k = 0; k < size(); ++k) {
    for (std::size_t j = 0; j < per_weight; ++j) {
      device_levels_[k * per_weight + j] =
          static_cast<std::uint16_t>(mapping_.device_level(levels_[k], j));
    }
  }
  // The board may have relaxed, been used or power-cycled since: read every placed cell and
  // reprogram those out of band.
  refresh(effective);
  std::vector<std::uint32_t> out_of_band;
  for (std::size_t d = 0; d < devices(); ++d) {
    const std::size_t level = device_levels_[d];
    const auto band = protocols::verify_band(level, mapping_.target_us(level), verify_.band_us);
    const bool was_moved = std::find(moved.begin(), moved.end(), d) != moved.end();
    if (was_moved || !band.contains(last_read_us_[d])) {
      out_of_band.push_back(static_cast<std::uint32_t>(d));
    }
  }
  if (!out_of_band.empty()) {
    spdlog::info("resume: {} of {} board cells out of band, reprogramming them", out_of_band.size(),
                 devices());
    program_devices(std::move(out_of_band));
    for (std::size_t k = 0; k < size(); ++k) set_effective(effective, k);
  }
}

}  // namespace metaplast::hil
