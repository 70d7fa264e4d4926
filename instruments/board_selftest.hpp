// Protocol conformance checks against any board (docs/protocol.md), so that new firmware can be
// checked before it drives an experiment: `metaplast board selftest --device ADDRESS`.
//
// The checks talk to the board partly below ArrayBoard (raw frames: a bad CRC, a repeated
// sequence number, an unknown opcode). They are mild on hardware: one RESET pulse on one cell
// (to prove a repeated request is not executed twice), a CONFIGURE with the read voltage 1 mV
// below the board's minimum (which the board must refuse; below, so that it is within every
// station's limits, which are maxima), and a watchdog trip in the safe state. Optional opcodes
// are used only when the board advertises them. The checks are a table of named functions
// (kChecks in board_selftest.cpp), run in that order.
#pragma once

#include <string>
#include <vector>

#include "instruments/array_board.hpp"

namespace metaplast::instruments {

struct SelftestCheck {
  std::string name;
  bool passed = false;
  std::string detail;  // what was seen (and expected, on failure)
  bool skipped = false;  // not run (passed stays true): it would send a pulse request
};

struct SelftestOptions {
  Cell probe_cell{0, 0};  // the cell that gets the one RESET pulse
  bool check_watchdog = true;
  // false: the checks that send a pulse request (RESET, executed or to be refused) are skipped,
  // the others run: the read-only part, for a chip without permission to pulse.
  bool allow_pulses = true;
};

// Runs every check on an open board (any state but closed; leaves it in the safe state).
// A check that throws is recorded as failed with the exception's message.
std::vector<SelftestCheck> run_selftest(ArrayBoard& board, const SelftestOptions& options = {});

}  // namespace metaplast::instruments
