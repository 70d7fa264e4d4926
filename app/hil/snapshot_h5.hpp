// Per-epoch array snapshots of a training run on a board, in HDF5 (layout in
// docs/run-records.md; readable with h5py, MATLAB's h5read, h5dump). Built in memory and written
// whole through a temporary name and a rename, so a crash or a full disk leaves the previous
// snapshots and no broken file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "app/hil/journal.hpp"
#include "instruments/board_settings.hpp"

namespace metaplast::util {
class H5File;
}

namespace metaplast::hil {

struct ArraySnapshot {
  std::uint16_t rows = 0, cols = 0;
  // Per cell, row-major (rows x cols). Unplaced cells: NaN / -1.
  std::vector<float> conductance_us;             // read at the end of the epoch
  std::vector<float> target_conductance_us;      // the board's target for the cell's level
  std::vector<std::int16_t> target_level;        // 0 = LCS, 1..N HCS
  std::vector<std::int16_t> layer;               // network layer of the weight (input layer 0)
  std::vector<std::uint32_t> programming_count;  // SET + RESET pulses, whole run, every cell
  std::vector<VerifyRow> verify;                 // every cell programmed during the epoch, in order
  // Attributes.
  std::string run_id, chip_id, board_serial, task;
  std::uint32_t board_boot_id = 0;
  int epoch = 0;        // 1-based within task
  int epoch_index = 0;  // 1-based over the whole run
  double band_us = 0;
  // The board settings in force, one attribute "board_setting_<key>" each (units in the key).
  instruments::BoardSettings board_settings;
};

// Writes `snapshot` to `file` (directories created) in one checked write (common/atomic_file.hpp).
// Throws std::runtime_error naming the file on an HDF5 or I/O error (a full disk included).
void write_snapshot_h5(const std::filesystem::path& file, const ArraySnapshot& snapshot);

// The settings in force as root attributes "board_setting_<key>" of an HDF5 record (snapshots,
// measurements): a number each, the level table's fields 1-D arrays (empty: the board's table).
void write_settings_attributes(util::H5File& h5, const instruments::BoardSettings& settings);

// "snapshots/epoch_0003.h5" for epoch_index 3.
std::filesystem::path snapshot_path(const std::filesystem::path& run_dir, int epoch_index);

}  // namespace metaplast::hil
