// Fuzz target: calibration files (sim/calibration.hpp, docs/calibration.md, docs/testing.md).
// Any input either parses into a calibration that validates, or throws CalibrationError.
// Anything else is a finding; so is a parsed calibration that does not survive a round trip.
// fuzz-link: Metaplast::sim
#include "sim/calibration.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto calibration = metaplast::sim::calibration_from_json(text, "fuzz.json");
    const auto again = metaplast::sim::calibration_from_json(
        metaplast::sim::calibration_to_json(calibration), "round trip");
    if (again.hcs_levels.size() != calibration.hcs_levels.size()) std::abort();
  } catch (const metaplast::sim::CalibrationError&) {
  }
  return 0;
}
