// A saved full read of the array, for a cell map without a board (`metaplast measure cell-map
// --from FILE`, docs/bench.md "Cell map"). The files the product itself writes, told apart by
// their contents (not their names):
//
//   board read CSV     `metaplast board read --out FILE`: rows x cols conductances (uS), one
//                      array row per line, no header;
//   training snapshot  a training run's snapshots/epoch_NNNN.h5 (docs/run-records.md): NaN on
//                      the cells without a weight, so it is a whole read only when the network
//                      covered the array;
//   cell map HDF5      a cell map's cell_map.h5: conductances, the FORM counters when the map
//                      used them, its thresholds and chip;
//   cell map CSV       a cell map's cell_map.csv (or any "row,col,conductance_us[,form_pulses]"
//                      list with a row per cell): the counters when its form_pulses column has
//                      them, the thresholds and chip from its header lines.
//
// Errors (std::invalid_argument, the message names the file, what is wrong, where and what to
// do): no such file; not one of these formats; a partial read (cells missing or not read);
// cells that read NaN.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace metaplast::bench {

struct SavedRead {
  std::string kind;  // "board read CSV", "training snapshot", "cell map HDF5", "cell map CSV"
  std::uint16_t rows = 0, cols = 0;
  std::vector<double> conductance_us;  // row-major, rows x cols, every cell, no NaN
  std::vector<long> form_pulses;       // FORM pulses per cell; empty: the file has none
  std::string chip_id;                 // the chip the file names; "": none
  // The thresholds of the cell map that wrote the file (cell map files only).
  std::optional<double> formed_threshold_us, stuck_above_us;
};

SavedRead load_saved_read(const std::filesystem::path& file);

// The CSV header line of a cell map's thresholds (cell_map.csv), read back by load_saved_read.
std::string thresholds_line(double formed_threshold_us, double stuck_above_us);

}  // namespace metaplast::bench
