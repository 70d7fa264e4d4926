// The board's pulse and read conditions by name: one table of the settings' keys, command-line
// options, units and meanings (docs/bench.md, "Pulse and read conditions"). The command line, the
// station file's "board_settings", a campaign's and a step's "board_settings", the run records
// and `metaplast board config` all go through it.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "instruments/board_types.hpp"

namespace metaplast::instruments {

// A setting's value: one number, or for a list field (the level table) one number per HCS level,
// where an empty list means "the board's own table".
using SettingValue = std::vector<double>;

// The most HCS levels a level table holds (the protocol's 16 levels less the LCS).
inline constexpr std::size_t kMaxTableLevels = 15;

// One field of BoardSettings.
struct SettingField {
  const char* key;      // JSON key and record attribute: "read_voltage_v"
  const char* option;   // command-line option: "--read-voltage"
  const char* unit;     // "V", "ns", "ms", "uS", or "" for an index
  const char* meaning;  // one line for help texts and `board config`
  double maximum;       // what each number can hold at all (tia_range: 255); limits come on top
  bool integer;         // tia_range and watchdog_ms take whole numbers
  bool list;            // 0 .. kMaxTableLevels numbers (JSON array; "a,b,c" on the command line)
  SettingValue (*get)(const BoardSettings&);
  void (*set)(BoardSettings&, const SettingValue&);
};

// Every field of BoardSettings, in a fixed order.
const std::vector<SettingField>& setting_fields();

// The field with this key; nullptr if there is none.
const SettingField* find_setting(const std::string& key);

// Values given for some of the settings (command line, station file, campaign, step), by key.
using SettingValues = std::map<std::string, SettingValue>;

// Parses {"read_voltage_v": 0.25, "level_gate_voltages_v": [0.8, 0.9], ...} found at JSON path
// `path` of `where` (a file name). Throws std::invalid_argument "<where>: <path>/<key> ..." for an
// unknown key (the message lists the known ones), a value that is not a number (a list field: not
// an array of numbers, or more than kMaxTableLevels), negative, beyond the field's range, or not
// whole where a whole number is due.
SettingValues setting_values_from_json(const nlohmann::json& doc, const std::string& where,
                                       const std::string& path);
nlohmann::json to_json(const SettingValues& values);

// Checks one value for `key` as setting_values_from_json does (`where` names its origin, e.g.
// "--read-voltage"). Throws std::invalid_argument.
void check_setting_value(const std::string& key, const SettingValue& value,
                         const std::string& where);

// A command-line value: a number; for a list field "0.8,0.9,1.0", or "board" for the board's own
// table. Checked as check_setting_value does. Throws std::invalid_argument naming `where`.
SettingValue parse_setting_text(const SettingField& field, const std::string& text,
                                const std::string& where);

// The value as JSON: a number, or an array for a list field.
nlohmann::json setting_json(const SettingField& field, const SettingValue& value);

// `base` with `values` applied (keys must be known: values come from the parsers above).
BoardSettings with_values(BoardSettings base, const SettingValues& values);

// Every field by key: the record of the settings in force.
nlohmann::json settings_to_json(const BoardSettings& settings);

// Reads settings_to_json's object back onto the defaults. Throws std::invalid_argument as
// setting_values_from_json.
BoardSettings settings_from_json(const nlohmann::json& doc, const std::string& where,
                                 const std::string& path);

// "read_voltage_v: 0.2 V recorded, 0.25 V now" for every field that differs; empty when equal.
std::vector<std::string> setting_differences(const BoardSettings& recorded,
                                             const BoardSettings& now);

// "read_voltage_v=0.2 V, set_bl_voltage_v=1.2 V, ..." on one line (CSV headers, logs).
std::string settings_line(const BoardSettings& settings);

// The values as command-line arguments ("--read-voltage", "0.25", "--level-gates", "0.8,0.9",
// ...; numbers in their shortest exact form; an empty list "board"), for the processes a command
// starts (campaign --jobs children, Slurm tasks). parse_setting_text reads them back exactly.
std::vector<std::string> setting_arguments(const SettingValues& values);

// A value with its unit, as the records and messages print it: "0.2 V", "100 ns", "0",
// "0.8, 0.9 V", "the board's table" (an empty list).
std::string format_setting(const SettingField& field, const SettingValue& value);

}  // namespace metaplast::instruments
