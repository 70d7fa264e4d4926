// The work units of a campaign plan (docs/cluster.md "Work units"): every planned step is one
// unit, and its result is the one a sequential run gives (same options, same seeds). A unit
// waits on the steps whose results it takes (its references, an evaluate's runs); a report waits
// on every step before it. Units that drive a shared board (the station's board, any `tcp:` or
// `serial:` board, or a chip record) form the board lane: they run one at a time, in plan order,
// never two at once, so a chip sees the same sequence of operations as in a sequential run.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/campaign/campaign.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::campaign {

struct Unit {
  std::size_t index = 0;              // its step in the plan
  std::vector<std::size_t> waits_on;  // units (plan indices, ascending) that must be done first
  bool board = false;                 // in the board lane
  std::size_t stage = 0;              // see plan_units
  int threads = 1;                    // a train step's "threads", else 1
};

// The units of `steps` (the plan, in order). A unit's stage is 0 when it waits on nothing, else
// one more than the latest stage it waits on, except that a board unit waiting on a board unit
// may share its stage (a stage's board units run in one job, in plan order). Every unit of a
// stage can run at once once the stages before it are done.
std::vector<Unit> plan_units(const std::vector<PlannedStep>& steps);

// Whether a step drives a shared board (see above): a characterize step, or a train step with a
// board layer, whose board is the station's (no "device"), or not the in-process simulated board,
// or whose chip record is kept ("chips-dir").
bool uses_board_lane(const PlannedStep& step);

// The board a step pulses, resolved: "" for a step that pulses none (not a characterize step nor a
// train step with a board layer); else its "device", else the station's array-board ("" when
// neither names one: the step then fails when it opens the board).
std::string pulsed_board_address(const PlannedStep& step, const instruments::Station& station);

std::size_t stage_count(const std::vector<Unit>& units);
int max_threads(const std::vector<Unit>& units);

// The unit named by `name`: a step id ("sweep/mstar=3") or its position in the plan ("4",
// counting from 0). Throws std::invalid_argument listing how to find the names.
std::size_t find_unit(const std::vector<PlannedStep>& steps, std::string_view name);

// The "Work units" part of `campaign check`: stages, what waits on what, the board lane.
std::string format_units(const std::vector<PlannedStep>& steps, const std::vector<Unit>& units);

}  // namespace metaplast::campaign
