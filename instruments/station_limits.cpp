#include "instruments/station_limits.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace metaplast::instruments {

namespace {

double positive_number(const nlohmann::json& value, const std::string& where,
                       const std::string& key) {
  if (!value.is_number()) {
    throw std::invalid_argument(where + ": /limits/" + key + " must be a number, got " +
                                value.dump());
  }
  const double v = value.get<double>();
  if (!std::isfinite(v) || v <= 0) {
    throw std::invalid_argument(where + ": /limits/" + key + " must be > 0, got " + value.dump());
  }
  return v;
}

}  // namespace

StationLimits station_limits_from_json(const nlohmann::json& doc, const std::string& where) {
  if (!doc.is_object()) {
    throw std::invalid_argument(where +
                                ": a station file must be a JSON object with a \"limits\""
                                " object");
  }
  StationLimits limits;
  for (const auto& [key, value] : doc.items()) {
    if (key == "station") {
      if (!value.is_string()) {
        throw std::invalid_argument(where + ": /station must be a string");
      }
      limits.station_name = value.get<std::string>();
    } else if (key != "limits" && key != "comment" && key != "description") {
      throw std::invalid_argument(where + ": unknown key /" + key +
                                  " (expected \"station\" and \"limits\")");
    }
  }
  if (!doc.contains("limits")) return limits;
  const auto& l = doc.at("limits");
  if (!l.is_object()) throw std::invalid_argument(where + ": /limits must be an object");
  struct Field {
    const char* key;
    double* target;
  };
  const Field fields[] = {
      {"max_read_voltage_v", &limits.max_read_voltage_v},
      {"max_wl_voltage_v", &limits.max_wl_voltage_v},
      {"max_bl_voltage_v", &limits.max_bl_voltage_v},
      {"max_sl_voltage_v", &limits.max_sl_voltage_v},
      {"max_pulse_width_ns", &limits.max_pulse_width_ns},
      {"max_compliance_ua", &limits.max_compliance_ua},
  };
  for (const auto& [key, value] : l.items()) {
    bool known = false;
    for (const auto& f : fields) {
      if (key == f.key) {
        *f.target = positive_number(value, where, key);
        known = true;
      }
    }
    if (key == "max_pulses_per_verify") {
      const double v = positive_number(value, where, key);
      if (v != std::floor(v) || v > 1e6) {
        throw std::invalid_argument(where +
                                    ": /limits/max_pulses_per_verify must be an integer "
                                    "in 1..1000000, got " +
                                    value.dump());
      }
      limits.max_pulses_per_verify = static_cast<std::uint32_t>(v);
      known = true;
    }
    if (!known) {
      throw std::invalid_argument(
          where + ": unknown key /limits/" + key +
          " (known: max_read_voltage_v, max_wl_voltage_v, max_bl_voltage_v, max_sl_voltage_v, "
          "max_pulse_width_ns, max_compliance_ua, max_pulses_per_verify)");
    }
  }
  return limits;
}

StationLimits load_station_limits(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read station file " + path.string() +
                             " (check the path given to --station)");
  }
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error("station file " + path.string() + " is not valid JSON: " + e.what());
  }
  return station_limits_from_json(doc, path.string());
}

nlohmann::json to_json(const StationLimits& limits) {
  return {{"station", limits.station_name},
          {"limits",
           {{"max_read_voltage_v", limits.max_read_voltage_v},
            {"max_wl_voltage_v", limits.max_wl_voltage_v},
            {"max_bl_voltage_v", limits.max_bl_voltage_v},
            {"max_sl_voltage_v", limits.max_sl_voltage_v},
            {"max_pulse_width_ns", limits.max_pulse_width_ns},
            {"max_compliance_ua", limits.max_compliance_ua},
            {"max_pulses_per_verify", limits.max_pulses_per_verify}}}};
}

}  // namespace metaplast::instruments
