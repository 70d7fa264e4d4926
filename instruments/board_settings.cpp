#include "instruments/board_settings.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace metaplast::instruments {

namespace {

// Member access for the table: one getter/setter pair per field. A scalar is a one-number value.
#define METAPLAST_SETTING(member)                                                            \
  false, [](const BoardSettings& s) { return SettingValue{static_cast<double>(s.member)}; }, \
      [](BoardSettings& s, const SettingValue& v) {                                          \
        s.member = static_cast<decltype(s.member)>(v.at(0));                                 \
      }
#define METAPLAST_LIST_SETTING(member)                                 \
  true, [](const BoardSettings& s) { return SettingValue{s.member}; }, \
      [](BoardSettings& s, const SettingValue& v) { s.member = v; }

// The wire carries voltages in mV (16 bits) and widths in ns (32 bits): what a field can hold.
constexpr double kMaxVoltageV = 65.0;
constexpr double kMaxWidthNs = 4.0e9;
constexpr double kMaxTargetUs = 1.0e6;  // a float32 on the wire, 1e6 uS at most (protocol 4.1)
constexpr const char* kBoardTable = "board";  // command-line word for "the board's own table"

std::string number_text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string known_keys() {
  std::string keys;
  for (const auto& f : setting_fields()) keys += std::string(keys.empty() ? "" : ", ") + f.key;
  return keys;
}

}  // namespace

const std::vector<SettingField>& setting_fields() {
  static const std::vector<SettingField> fields{
      {"read_voltage_v", "--read-voltage", "V", "read bias on the bit line", kMaxVoltageV, false,
       METAPLAST_SETTING(read_voltage_v)},
      {"set_bl_voltage_v", "--set-bl-voltage", "V",
       "SET bit-line amplitude (the gate comes from the level's I_CC)", kMaxVoltageV, false,
       METAPLAST_SETTING(set_bl_voltage_v)},
      {"set_pulse_width_ns", "--set-width", "ns", "SET pulse width", kMaxWidthNs, false,
       METAPLAST_SETTING(set_pulse_width_ns)},
      {"reset_sl_voltage_v", "--reset-sl-voltage", "V", "RESET source-line amplitude", kMaxVoltageV,
       false, METAPLAST_SETTING(reset_sl_voltage_v)},
      {"reset_wl_voltage_v", "--reset-wl-voltage", "V", "RESET word-line (gate) voltage",
       kMaxVoltageV, false, METAPLAST_SETTING(reset_wl_voltage_v)},
      {"reset_pulse_width_ns", "--reset-width", "ns", "RESET pulse width", kMaxWidthNs, false,
       METAPLAST_SETTING(reset_pulse_width_ns)},
      {"form_bl_voltage_v", "--form-bl-voltage", "V", "FORM bit-line amplitude", kMaxVoltageV,
       false, METAPLAST_SETTING(form_bl_voltage_v)},
      {"form_wl_voltage_v", "--form-wl-voltage", "V",
       "FORM word-line (gate) voltage: limits the forming current", kMaxVoltageV, false,
       METAPLAST_SETTING(form_wl_voltage_v)},
      {"form_pulse_width_ns", "--form-width", "ns", "FORM pulse width", kMaxWidthNs, false,
       METAPLAST_SETTING(form_pulse_width_ns)},
      {"tia_range", "--tia-range", "",
       "read amplifier (TIA) range: an index into the board's TIA ranges (board info)", 255, true,
       METAPLAST_SETTING(tia_range)},
      {"watchdog_ms", "--watchdog-ms", "ms",
       "board watchdog: safe state after this long without a request (0: off)", 4.0e9, true,
       METAPLAST_SETTING(watchdog_ms)},
      {"level_gate_voltages_v", "--level-gates", "V",
       "SET gate (word-line) voltage of each HCS level, ascending: sets its I_CC ('board': the "
       "board's own table)",
       kMaxVoltageV, false, METAPLAST_LIST_SETTING(level_gate_voltages_v)},
      {"level_targets_us", "--level-targets", "uS",
       "program-and-verify target of each HCS level, ascending, one per gate ('board': the "
       "board's own table)",
       kMaxTargetUs, false, METAPLAST_LIST_SETTING(level_targets_us)},
  };
  return fields;
}

#undef METAPLAST_SETTING
#undef METAPLAST_LIST_SETTING

const SettingField* find_setting(const std::string& key) {
  for (const auto& f : setting_fields()) {
    if (key == f.key) return &f;
  }
  return nullptr;
}

void check_setting_value(const std::string& key, const SettingValue& value,
                         const std::string& where) {
  const SettingField* f = find_setting(key);
  if (!f) {
    throw std::invalid_argument(where + " is not a board setting (known: " + known_keys() + ")");
  }
  if (!f->list && value.size() != 1) {
    throw std::invalid_argument(where + " takes one number, got " + std::to_string(value.size()));
  }
  if (value.size() > kMaxTableLevels) {
    throw std::invalid_argument(where + " lists " + std::to_string(value.size()) +
                                " levels; a level table holds at most " +
                                std::to_string(kMaxTableLevels));
  }
  for (double v : value) {
    if (!std::isfinite(v) || v < 0 || v > f->maximum) {
      throw std::invalid_argument(where + " must be " + (f->list ? "numbers" : "a number") +
                                  " in 0 .. " + number_text(f->maximum) +
                                  (*f->unit ? std::string(" ") + f->unit : "") + ", got " +
                                  number_text(v));
    }
    if (f->integer && v != std::floor(v)) {
      throw std::invalid_argument(where + " must be a whole number, got " + number_text(v));
    }
  }
}

SettingValue parse_setting_text(const SettingField& field, const std::string& text,
                                const std::string& where) {
  SettingValue value;
  if (!(field.list && text == kBoardTable)) {
    std::size_t start = 0;
    while (true) {
      const std::size_t end =
          field.list ? std::min(text.find(',', start), text.size()) : text.size();
      const std::string item = text.substr(start, end - start);
      double v = 0;
      const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
      if (item.empty() || ec != std::errc() || ptr != item.data() + item.size()) {
        throw std::invalid_argument(
            where + ": \"" + text + "\" is not " +
            (field.list ? std::string("a comma-separated list of numbers, e.g. 0.8,0.9,1.0, or "
                                      "\"board\" for the board's own table")
                        : std::string("a number")));
      }
      value.push_back(v);
      if (end == text.size()) break;
      start = end + 1;
    }
  }
  check_setting_value(field.key, value, where);
  return value;
}

nlohmann::json setting_json(const SettingField& field, const SettingValue& value) {
  if (field.list) return value;
  if (field.integer) return static_cast<std::uint64_t>(value.at(0));
  return value.at(0);
}

SettingValues setting_values_from_json(const nlohmann::json& doc, const std::string& where,
                                       const std::string& path) {
  if (!doc.is_object()) {
    throw std::invalid_argument(where + ": " + path +
                                " must be an object of board settings {\"read_voltage_v\": 0.2, "
                                "...}, got " + doc.dump());
  }
  SettingValues values;
  for (const auto& [key, value] : doc.items()) {
    const std::string at = where + ": " + path + "/" + key;
    if (!find_setting(key)) {
      throw std::invalid_argument(at + " is not a board setting (known: " + known_keys() + ")");
    }
    const bool list = find_setting(key)->list;
    const auto number = [](const nlohmann::json& v) { return v.is_number(); };
    if (list ? !(value.is_array() && std::all_of(value.begin(), value.end(), number))
             : !value.is_number()) {
      throw std::invalid_argument(at + " must be " +
                                  (list ? "an array of numbers, one per HCS level ([]: the "
                                          "board's own table)"
                                        : "a number") +
                                  ", got " + value.dump());
    }
    SettingValue v = list ? value.get<SettingValue>() : SettingValue{value.get<double>()};
    check_setting_value(key, v, at);
    values[key] = std::move(v);
  }
  return values;
}

nlohmann::json to_json(const SettingValues& values) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : values) {
    const SettingField* f = find_setting(key);
    if (!f) throw std::invalid_argument("unknown board setting \"" + key + "\"");
    j[key] = setting_json(*f, value);
  }
  return j;
}

BoardSettings with_values(BoardSettings base, const SettingValues& values) {
  for (const auto& [key, value] : values) {
    const SettingField* f = find_setting(key);
    if (!f) throw std::invalid_argument(key + " is not a board setting (known: " + known_keys() + ")");
    f->set(base, value);
  }
  return base;
}

nlohmann::json settings_to_json(const BoardSettings& settings) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : setting_fields()) j[f.key] = setting_json(f, f.get(settings));
  return j;
}

BoardSettings settings_from_json(const nlohmann::json& doc, const std::string& where,
                                 const std::string& path) {
  return with_values(BoardSettings{}, setting_values_from_json(doc, where, path));
}

std::vector<std::string> setting_arguments(const SettingValues& values) {
  std::vector<std::string> args;
  for (const auto& [key, value] : values) {
    const SettingField* field = find_setting(key);
    if (!field) throw std::invalid_argument("unknown board setting \"" + key + "\"");
    std::string text;
    for (double v : value) {
      char number[32];
      const auto end = std::to_chars(number, number + sizeof number, v).ptr;
      if (!text.empty()) text += ',';
      text.append(number, end);
    }
    args.push_back(field->option);
    args.push_back(field->list && value.empty() ? kBoardTable : text);
  }
  return args;
}

std::string format_setting(const SettingField& field, const SettingValue& value) {
  if (field.list && value.empty()) return "the board's table";
  std::string text;
  for (double v : value) {
    if (!text.empty()) text += ", ";
    text += number_text(v);
  }
  return text + (*field.unit ? std::string(" ") + field.unit : "");
}

std::vector<std::string> setting_differences(const BoardSettings& recorded,
                                             const BoardSettings& now) {
  std::vector<std::string> out;
  for (const auto& f : setting_fields()) {
    if (f.get(recorded) == f.get(now)) continue;
    out.push_back(std::string(f.key) + ": " + format_setting(f, f.get(recorded)) + " recorded, " +
                  format_setting(f, f.get(now)) + " now");
  }
  return out;
}

std::string settings_line(const BoardSettings& settings) {
  std::string line;
  for (const auto& f : setting_fields()) {
    line += std::string(line.empty() ? "" : ", ") + f.key + "=" + format_setting(f, f.get(settings));
  }
  return line;
}

}  // namespace metaplast::instruments
