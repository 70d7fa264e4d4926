// The station file: one measurement station (probe card, cabling, the chip generation mounted on
// it): its instruments and their addresses, the die under test, and the host-side safety limits.
// The limits are checked BEFORE anything is sent to a board, and they are stricter than (or equal
// to) the board's own limits, which the board enforces again on its side.
//
// Station file (JSON), every key optional; a missing limit keeps the built-in default, an unknown
// key is an error (a typo must not silently fall back to a default). docs/campaigns.md has the
// full description.
//   {
//     "station": "probe-station-2",
//     "chip": "W12-D07",                    // the die mounted: 1..64 of [A-Za-z0-9._-]
//     "allow_pulses": true,                 // pulses on a non-simulated board without --yes
//     "chips_dir": "/lab/chips",            // the chip registry (relative: to this file's folder)
//     "instruments": {                      // name -> instrument
//       "array": {"type": "array-board", "address": "serial:/dev/ttyUSB0?baud=921600"},
//       "smu":   {"type": "smu", "address": "tcp:192.168.1.20:5025"}
//     },
//     "limits": {
//       "max_read_voltage_v": 0.3,
//       "max_wl_voltage_v": 3.0, "max_bl_voltage_v": 3.6, "max_sl_voltage_v": 2.5,
//       "max_pulse_width_ns": 10000, "max_compliance_ua": 100,
//       "max_pulses_per_verify": 100
//     }
//   }
// Instrument types: "array-board" (the 1T1R array board metaplast drives; at most one), "smu",
// "pulse-generator", "switch-matrix", "other" (recorded, not driven). Addresses start with
// "sim:", "tcp:" or "serial:".
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "instruments/board_settings.hpp"

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

struct StationInstrument {
  std::string name;     // the key in "instruments"
  std::string type;     // "array-board", "smu", "pulse-generator", "switch-matrix", "other"
  std::string address;  // sim:..., tcp:HOST:PORT, serial:PATH[?baud=N]
};

// Where a cluster runs the jobs that drive this station's board (docs/cluster.md): the node the
// board is wired to, or a generic resource that only that node has.
struct SlurmPlacement {
  std::string nodelist;  // sbatch --nodelist
  std::string gres;      // sbatch --gres
};

// A whole station file.
struct Station {
  std::string name = "built-in conservative defaults";
  std::string chip;  // empty: not given
  // "allow_pulses": true: commands may pulse this station's (non-simulated) board without --yes
  // (docs/campaigns.md, "Permission to pulse"). Default false.
  bool allow_pulses = false;
  // "chips_dir": the chip registry's folder (docs/campaigns.md), made absolute against the station
  // file's folder; empty: not given (--chips-dir, else $METAPLAST_CHIPS, else <repository>/chips).
  std::string chips_dir;
  // "board_settings": the station's defaults of the pulse and read conditions
  // (instruments/board_settings.hpp); a campaign, a step and the command line override them.
  SettingValues board_settings;
  std::vector<StationInstrument> instruments;
  StationLimits limits;
  SlurmPlacement slurm;
  std::string source;  // the file it came from (for messages), empty for defaults

  // The array board's instrument, if the station has one.
  const StationInstrument* array_board() const;
};

// Parses a station file's JSON. `where` names the source in error messages (a file path).
// Throws std::invalid_argument "<where>: <JSON path> <what was expected>, got <value>" for a bad,
// negative, mistyped or unknown value.
Station station_from_json(const nlohmann::json& doc, const std::string& where);

// Parses a station file's text (common/json_file.hpp: depth limit, duplicate keys an error).
// Throws common::JsonFileError (a std::runtime_error) if it is not JSON, std::invalid_argument
// for a bad value (see station_from_json).
Station station_from_text(std::string_view text, const std::string& where);

// Reads and parses a station file. Throws std::runtime_error if the file cannot be read or is
// not JSON, std::invalid_argument for a bad value (see station_from_json).
Station load_station(const std::filesystem::path& path);

// The limits part of a station file (the whole file is validated).
StationLimits station_limits_from_json(const nlohmann::json& doc, const std::string& where);
StationLimits load_station_limits(const std::filesystem::path& path);

// The board address a hardware command uses: `device` when given, else the station's
// array-board address. Throws std::invalid_argument saying to give --device or a station file
// with an "array-board" instrument when neither names one.
std::string resolve_board_address(const std::string& device,
                                  const std::optional<std::filesystem::path>& station_file);

nlohmann::json to_json(const StationLimits& limits);
nlohmann::json to_json(const Station& station);

// Thrown when a request would exceed the station's (host) limits; nothing has been sent.
class LimitError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace metaplast::instruments
