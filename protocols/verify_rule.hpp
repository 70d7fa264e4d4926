// The program-and-verify rule of docs/protocol.md 4.6 in one place: when a reading is in its
// level's band, which pulse brings a cell out of band back towards it, and the per-cell loop.
// Used by the simulated firmware, the host-side loop of the array-board driver, reboot
// reconciliation, the host's virtual store, the board store and the run journal, so that they
// can never disagree about what "in band" means.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "protocols/board_messages.hpp"

namespace metaplast::protocols {

// The band a verify loop accepts for one target: |g - target| <= tolerance for levels >= 1;
// one-sided, g <= target + tolerance, for level 0 (the LCS: any lower conductance will do).
struct VerifyBand {
  double target_us = 0;
  double tolerance_us = 0;
  bool one_sided = false;  // level 0

  bool contains(double g_us) const {
    return one_sided ? g_us <= target_us + tolerance_us
                     : std::abs(g_us - target_us) <= tolerance_us;
  }
  // The next pulse for a cell that reads g_us out of band: RESET for level 0 or above the band,
  // SET (to the level's compliance) below it.
  PulseKind pulse_for(double g_us) const {
    return one_sided || g_us > target_us + tolerance_us ? PulseKind::kReset : PulseKind::kSet;
  }
};

inline VerifyBand verify_band(std::size_t level, double target_us, double tolerance_us) {
  return {target_us, tolerance_us, level == 0};
}

// A band half-width as the board applies it: the wire carries it in 0.01 uS units
// (tolerance_us_x100), so host-side judgements of the board's cells round the same way.
inline std::uint16_t tolerance_us_x100(double band_us) {
  return static_cast<std::uint16_t>(std::lround(band_us * 100));
}
inline double tolerance_on_wire_grid(double band_us) { return std::round(band_us * 100) / 100; }

struct VerifyOutcome {
  std::uint32_t attempts = 0;  // pulses applied
  double final_us = 0;         // the last verify read
  bool passed = false;         // final_us in band
};

// The per-cell loop of docs/protocol.md 4.6:
//   g = read(); while g out of band and attempts < max_attempts: pulse; g = read().
// `read()` returns the cell's conductance in uS; `pulse(kind)` applies one SET or RESET.
template <class Read, class Pulse>
VerifyOutcome verify_cell(const VerifyBand& band, std::uint32_t max_attempts, Read&& read,
                          Pulse&& pulse) {
  VerifyOutcome out;
  out.final_us = read();
  while (!band.contains(out.final_us) && out.attempts < max_attempts) {
    pulse(band.pulse_for(out.final_us));
    ++out.attempts;
    out.final_us = read();
  }
  out.passed = band.contains(out.final_us);
  return out;
}

}  // namespace metaplast::protocols
