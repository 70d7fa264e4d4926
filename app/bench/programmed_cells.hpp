// The start of every level-resolved measurement: N cells chosen among those that read as formed
// (seeded, never an unformed one: forming is only ever explicit, `metaplast board form`), spread
// evenly over the chosen levels, programmed with batch program-and-verify
// (ArrayBoard::program_and_verify) in chunks, each chunk stamped with the board's clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "instruments/array_board.hpp"

namespace metaplast::bench {

struct ProgramPlan {
  std::size_t cells = 0;
  std::vector<int> levels;  // empty: every level of the board
  std::uint64_t seed = 1;
  double band_us = 5.0;
  std::uint32_t max_attempts = 20;
  double formed_threshold_us = 0;  // 0: 0.2 x the LCS target from identify
  std::size_t chunk_cells = 256;
};

struct ProgrammedCell {
  instruments::Cell cell;
  int level = 0;
  double target_us = 0;  // the level's program-and-verify target
  double verify_us = 0;  // the last verify read: G0
  bool passed = false;   // ended in band
  std::uint32_t attempts = 0;
  std::size_t chunk = 0;  // index into ProgrammedCells::chunk_end_ms
};

struct ProgrammedCells {
  std::vector<ProgrammedCell> cells;  // in programming order; level = i mod levels
  std::vector<int> levels;            // the levels used, ascending
  std::vector<double> chunk_end_ms;   // board uptime (ms) when each chunk was programmed
  std::uint32_t boot_id = 0;          // the boot those times belong to
  double formed_threshold_us = 0;
  std::size_t formed = 0, unformed = 0;  // of the whole array at the scan
};

// Scans the array, chooses and programs (board active). Throws std::invalid_argument when fewer
// than plan.cells cells read as formed (naming `metaplast board form`) or a level does not exist
// on the board.
ProgrammedCells choose_and_program(instruments::ArrayBoard& board, const ProgramPlan& plan);

nlohmann::json to_json(const ProgrammedCells& cells);
ProgrammedCells programmed_cells_from_json(const nlohmann::json& j);

// The cells as a list for ArrayBoard::read.
std::vector<instruments::Cell> cell_list(const ProgrammedCells& cells);

}  // namespace metaplast::bench
