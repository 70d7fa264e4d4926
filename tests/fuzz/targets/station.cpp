// Fuzz target: station files (instruments/station_limits.hpp, docs/testing.md). Any input either
// parses or throws the loader's documented errors: common::JsonFileError (not strict JSON) or
// std::invalid_argument (a bad value). Anything else is a finding.
// fuzz-link: Metaplast::instruments
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "common/json_file.hpp"
#include "instruments/station_limits.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto station = metaplast::instruments::station_from_text(text, "fuzz.json");
    (void)metaplast::instruments::to_json(station).dump();
  } catch (const metaplast::common::JsonFileError&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
