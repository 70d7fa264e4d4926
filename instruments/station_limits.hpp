// Host-side safety limits of one measurement station (probe card, cabling, the chip generation
// mounted on it). They are checked BEFORE anything is sent to a board, and they are stricter
// than (or equal to) the board's own limits, which the board enforces again on its side.
//
// Station file (JSON), every key optional; a missing key keeps the built-in default, an unknown
// key is an error (a typo must not silently fall back to a default):
//   {
//     "station": "probe-station-2",
//     "limits": {
//       "max_read_voltage_v": 0.3,
//       "max_wl_voltage_v": 3.0, "max_bl_voltage_v": 3.6, "max_sl_voltage_v": 2.5,
//       "max_pulse_width_ns": 10000, "max_compliance_ua": 100,
//       "max_pulses_per_verify": 100
//     }
//   }
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>

namespace metaplast::instruments {

struct StationLimits {
  std::string station_name = "built-in conservative defaults";
  double max_read_voltage_v = 0.3;  // read bias on the bit line
  double max_wl_voltage_v = 3.0;    // word line (gate) amplitude, any operation
  double max_bl_voltage_v = 3.6;    // bit line amplitude (SET, FORM)
  double max_sl_voltage_v = 2.5;    // source line amplitude (RESET)
  double max_pulse_width_ns = 10000.0;
  double max_compliance_ua = 100.0;           // largest I_CC the gate may be set to
  std::uint32_t max_pulses_per_verify = 100;  // max attempts of one program-and-verify cell

  // Built-in conservative defaults (the values above).
  static StationLimits defaults() { return {}; }
};

// Parses a station file's JSON. `where` names the source in error messages (a file path).
// Throws std::invalid_argument naming the JSON path of a bad, negative or unknown value.
StationLimits station_limits_from_json(const nlohmann::json& doc, const std::string& where);

// Reads and parses a station file. Throws std::runtime_error if the file cannot be read or is
// not JSON, std::invalid_argument for a bad value (see station_limits_from_json).
StationLimits load_station_limits(const std::filesystem::path& path);

nlohmann::json to_json(const StationLimits& limits);

// Thrown when a request would exceed the station's (host) limits; nothing has been sent.
class LimitError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace metaplast::instruments
