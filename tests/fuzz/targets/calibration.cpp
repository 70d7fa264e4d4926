// Fuzz target: calibration files (devices/calibration.hpp, docs/calibration.md, docs/testing.md).
// Any input either parses into a calibration that validates, or throws CalibrationError.
// Anything else is a finding; so is a parsed calibration that does not survive a round trip.
// fuzz-link: Metaplast::devices
#include "devices/calibration.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto calibration = metaplast::devices::calibration_from_json(text, "fuzz.json");
    const auto again = metaplast::devices::calibration_from_json(
        metaplast::devices::calibration_to_json(calibration), "round trip");
    if (again.hcs_levels.size() != calibration.hcs_levels.size()) std::abort();
  } catch (const metaplast::devices::CalibrationError&) {
  }
  return 0;
}
