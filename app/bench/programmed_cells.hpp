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

// The cells and how they are programmed: the options every level-resolved measurement shares
// (its options struct holds one ProgramPlan as `programming`).
struct ProgramPlan {
  std::size_t cells = 0;
  std::vector<int> levels;  // empty: every level of the board
  std::uint64_t seed = 1;
  double band_us = 5.0;
  std::uint32_t max_attempts = 20;
  double formed_threshold_us = 0;  // 0: 0.2 x the LCS target from identify
  std::size_t chunk_cells = 256;
};

// `cells` cells on every level, programmed with the defaults above.
inline ProgramPlan default_plan(std::size_t cells) {
  ProgramPlan plan;
  plan.cells = cells;
  return plan;
}

// The programming options' checks that every measurement shares: band-us, max-attempts,
// chunk-cells (at most max_cells) and formed-threshold-us. Throws OptionError naming the option.
void check_programming_options(const ProgramPlan& plan, std::int64_t max_cells);

// The plan as a measurement's options (keys as on the command line: cells, levels, seed, band-us,
// max-attempts, formed-threshold-us, chunk-cells).
nlohmann::json to_json(const ProgramPlan& plan);
// Reads the keys seed, band-us, max-attempts, formed-threshold-us and chunk-cells (at most
// max_cells) of a campaign step into `plan`, each optional. Throws OptionError naming the key.
void read_programming_options(const nlohmann::json& step, std::int64_t max_cells,
                              ProgramPlan& plan);

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
// The choice alone (board active; only reads): the cells with their levels, none programmed
// (verify_us 0, passed false, no chunk times). Throws as choose_and_program.
ProgrammedCells choose_formed_cells(instruments::ArrayBoard& board, const ProgramPlan& plan);

nlohmann::json to_json(const ProgrammedCells& cells);
ProgrammedCells programmed_cells_from_json(const nlohmann::json& j);

// The cells as a list for ArrayBoard::read.
std::vector<instruments::Cell> cell_list(const ProgrammedCells& cells);

}  // namespace metaplast::bench
