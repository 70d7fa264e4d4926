// Chip identity: which die is under test, and what the host knows about it across sessions.
//
// One JSON file per chip, <dir>/<chip id>.json (dir: --chips-dir, else $METAPLAST_CHIPS, else
// <repository>/chips/), schema "metaplast.chip" version 1:
//   {"schema_version": 1, "kind": "metaplast.chip", "chip_id": "...",
//    "geometry": {"rows": 128, "cols": 128},
//    "formed_cells": [index, ...],                  // row * cols + col, ascending
//    "bad_cells": [{"cell": i, "row": r, "col": c, "reason": "stuck_lcs", "detail": "...",
//                   "date": "..."}, ...],            // reason: stuck_lcs, stuck_hcs, outlier,
//                                                    // failed_band, unformable
//    "writes": {"total": N, "per_cell": [rows * cols counts]},   // SET + RESET pulses by
//                                                    // metaplast sessions, cumulative
//    "sessions": [{"date", "kind", "board_model", "board_serial", "cells", "writes", "note"}],
//                                                    // cells: board cells the session used
//    "created": "...", "updated": "..."}
// Files are replaced atomically (temporary file + rename) under an advisory lock
// (<id>.json.lock), so two sessions updating the same chip do not lose each other's writes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "devices/calibration.hpp"

namespace metaplast::hil {

// A calibration, checkpoint or record belongs to another chip than the one under test.
class ChipMismatchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws std::invalid_argument unless `chip_id` is 1..64 characters of [A-Za-z0-9._-], not
// starting with '.' (it becomes a file name).
void validate_chip_id(const std::string& chip_id);

// The chip id to record when none is given: derived from the board's serial ("board-<serial>",
// characters outside [A-Za-z0-9._-] replaced by '_').
std::string chip_id_from_board_serial(const std::string& board_serial);

// The chip under test, one rule for every command and step that pulses a board: `given` (--chip,
// a step's "chip") unless empty, else `station_chip` (the station file's "chip") unless empty,
// else chip_id_from_board_serial of the serial the board reported in IDENTIFY (a simulated board
// reports one per seed and state file). Throws std::invalid_argument when all three are empty
// (saying to pass --chip or set the station's "chip"), and for an invalid id.
std::string chip_id_for_board(const std::string& given, const std::string& station_chip,
                              const std::string& board_serial);

// Refuses (ChipMismatchError) a calibration made on another chip: the message names both chips,
// the calibration's board and date, and what to do (characterise this chip, or pass the right
// --chip). `what` names the calibration in the message (e.g. its file name).
void require_same_chip(const devices::Calibration& calibration, const std::string& chip_id,
                       const std::string& what = "calibration");

struct BadCellRecord {
  std::uint32_t cell = 0;  // row * cols + col
  std::string reason;      // stuck_lcs, stuck_hcs, outlier, failed_band, unformable
  std::string detail;
  std::string date;  // ISO 8601 UTC, when first found
};

struct ChipSession {
  std::string date;
  std::string kind;  // "characterize", "train", ...
  std::string board_model;
  std::string board_serial;
  std::uint64_t cells = 0;   // board cells used (train records before issue 13 counted the
                             // network's analog devices, virtual ones included)
  std::uint64_t writes = 0;  // programming operations (SET + RESET pulses) in the session
  std::string note;          // e.g. the calibration written
};

struct ChipRecord {
  static constexpr int kSchemaVersion = 1;
  std::string chip_id;
  std::uint16_t rows = 0, cols = 0;
  std::set<std::uint32_t> formed_cells;
  std::map<std::uint32_t, BadCellRecord> bad_cells;
  std::vector<std::uint64_t> writes_per_cell;  // rows * cols
  std::uint64_t total_writes = 0;
  std::vector<ChipSession> sessions;
  std::string created, updated;

  // An empty record of a chip with this geometry.
  static ChipRecord fresh(const std::string& chip_id, std::uint16_t rows, std::uint16_t cols);
  std::uint32_t index(std::uint16_t row, std::uint16_t col) const {
    return static_cast<std::uint32_t>(row) * cols + col;
  }
  bool is_bad(std::uint32_t cell) const { return bad_cells.count(cell) != 0; }
  // Adds `pulses` programming operations to a cell (and the total).
  void add_writes(std::uint32_t cell, std::uint64_t pulses);
  // Marks a cell bad (keeps the first record if already bad).
  void mark_bad(std::uint32_t cell, std::string reason, std::string detail, std::string date);
};

class ChipRegistry {
 public:
  explicit ChipRegistry(std::filesystem::path directory);

  // --chips-dir if given, else $METAPLAST_CHIPS, else <repository>/chips.
  static std::filesystem::path default_directory();
  // The registry a run on a board keeps (train runs and campaign characterize steps):
  // `chips_dir` if given; else none (empty) for the in-process simulated board, whose chips are
  // new each run; else default_directory().
  static std::filesystem::path for_run(const std::filesystem::path& chips_dir,
                                       bool simulated_board);

  const std::filesystem::path& directory() const { return directory_; }
  std::filesystem::path file_for(const std::string& chip_id) const;

  // The chip's record, or nothing if the chip was never seen. Throws std::runtime_error naming
  // the file and the JSON path on a malformed file.
  std::optional<ChipRecord> load(const std::string& chip_id) const;

  // Read-modify-write under the lock: loads the record (or a fresh one with this geometry),
  // calls `change`, stamps `updated` and writes it atomically. Throws std::runtime_error if the
  // existing record has another geometry, or the directory cannot be written.
  ChipRecord update(const std::string& chip_id, std::uint16_t rows, std::uint16_t cols,
                    const std::function<void(ChipRecord&)>& change);

 private:
  std::filesystem::path directory_;
};

// JSON text <-> record (`source` names the file in errors).
std::string chip_record_to_json(const ChipRecord& record);
ChipRecord chip_record_from_json(const std::string& text, const std::string& source);

}  // namespace metaplast::hil
