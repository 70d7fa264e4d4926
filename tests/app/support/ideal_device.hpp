// A noise-free simulated device for the app tests: no spreads, no read noise, no relaxation, no
// defects (the defaults otherwise), so stored weights read back exactly.
#pragma once

#include "devices/calibration.hpp"

namespace metaplast::test {

inline devices::Calibration ideal_device() {
  devices::Calibration c = devices::Calibration::defaults();
  for (auto& level : c.hcs_levels) {
    level.c2c_sigma_us = 0.0;
    level.d2d_sigma_rel = 0.0;
  }
  c.lcs.c2c_sigma_ln = 0.0;
  c.lcs.d2d_sigma_ln = 0.0;
  c.read_noise.relative = 0.0;
  c.read_noise.absolute_us = 0.0;
  c.relaxation.enabled = false;
  c.yield.defect_fraction = 0.0;
  return c;
}

}  // namespace metaplast::test
