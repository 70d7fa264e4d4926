#include "instruments/board_settings.hpp"

#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace metaplast::instruments {

namespace {

// Member access for the table: one getter/setter pair per field.
#define METAPLAST_SETTING(member)                                                     \
  [](const BoardSettings& s) { return static_cast<double>(s.member); },               \
      [](BoardSettings& s, double v) { s.member = static_cast<decltype(s.member)>(v); }

// The wire carries voltages in mV (16 bits) and widths in ns (32 bits): what a field can hold.
constexpr double kMaxVoltageV = 65.0;
constexpr double kMaxWidthNs = 4.0e9;

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
      {"reset_sl_voltage_v", "--reset-sl-voltage", "V", "RESET source-line amplitude",
       kMaxVoltageV, false, METAPLAST_SETTING(reset_sl_voltage_v)},
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
      {"tia_range", "--tia-range", "", "read amplifier (TIA) range: an index into the board's TIA ranges (board info)",
       255, true, METAPLAST_SETTING(tia_range)},
      {"watchdog_ms", "--watchdog-ms", "ms",
       "board watchdog: safe state after this long without a request (0: off)", 4.0e9, true,
       METAPLAST_SETTING(watchdog_ms)},
  };
  return fields;
}

#undef METAPLAST_SETTING

const SettingField* find_setting(const std::string& key) {
  for (const auto& f : setting_fields()) {
    if (key == f.key) return &f;
  }
  return nullptr;
}

void check_setting_value(const std::string& key, double value, const std::string& where) {
  const SettingField* f = find_setting(key);
  if (!f) {
    throw std::invalid_argument(where + " is not a board setting (known: " + known_keys() + ")");
  }
  if (!std::isfinite(value) || value < 0 || value > f->maximum) {
    throw std::invalid_argument(where + " must be a number in 0 .. " + number_text(f->maximum) +
                                (*f->unit ? std::string(" ") + f->unit : "") + ", got " +
                                number_text(value));
  }
  if (f->integer && value != std::floor(value)) {
    throw std::invalid_argument(where + " must be a whole number, got " + number_text(value));
  }
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
    if (!value.is_number()) {
      throw std::invalid_argument(at + " must be a number, got " + value.dump());
    }
    check_setting_value(key, value.get<double>(), at);
    values[key] = value.get<double>();
  }
  return values;
}

nlohmann::json to_json(const SettingValues& values) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : values) j[key] = value;
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
  for (const auto& f : setting_fields()) {
    if (f.integer) {
      j[f.key] = static_cast<std::uint64_t>(f.get(settings));
    } else {
      j[f.key] = f.get(settings);
    }
  }
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
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, value).ptr;
    args.push_back(field->option);
    args.emplace_back(text, end);
  }
  return args;
}

std::string format_setting(const SettingField& field, double value) {
  return number_text(value) + (*field.unit ? std::string(" ") + field.unit : "");
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
