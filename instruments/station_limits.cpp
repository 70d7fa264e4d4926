#include "instruments/station_limits.hpp"

#include <cctype>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "common/json_file.hpp"

namespace metaplast::instruments {

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& path, const std::string& what,
                      const nlohmann::json* value = nullptr) {
  throw std::invalid_argument(where + ": " + path + " " + what +
                              (value ? ", got " + common::describe_json(*value) : std::string()));
}

double positive_number(const nlohmann::json& value, const std::string& where,
                       const std::string& key) {
  const std::string path = "/limits/" + key;
  if (!value.is_number()) bad(where, path, "must be a number", &value);
  const double v = value.get<double>();
  if (!std::isfinite(v) || v <= 0) bad(where, path, "must be > 0", &value);
  return v;
}

const std::string& string_at(const nlohmann::json& value, const std::string& where,
                             const std::string& path) {
  if (!value.is_string()) bad(where, path, "must be a string", &value);
  return value.get_ref<const std::string&>();
}

// Same rule as hil::validate_chip_id: the id becomes a file name.
void check_chip_id(const nlohmann::json& value, const std::string& where) {
  const std::string& id = string_at(value, where, "/chip");
  bool ok = !id.empty() && id.size() <= 64 && id[0] != '.';
  for (char c : id) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  if (!ok)
    bad(where, "/chip", "must be 1..64 characters of [A-Za-z0-9._-], not starting with '.'",
        &value);
}

// "slurm": {"nodelist": "bench-pc", "gres": "metaplast_board:1"}: names Slurm reads as they are.
SlurmPlacement slurm_from_json(const nlohmann::json& value, const std::string& where) {
  if (!value.is_object()) {
    bad(where, "/slurm", "must be an object {\"nodelist\": NODE, \"gres\": GRES}", &value);
  }
  SlurmPlacement placement;
  for (const auto& [key, v] : value.items()) {
    const std::string path = "/slurm/" + key;
    if (key != "nodelist" && key != "gres") {
      bad(where, path, "is not a known key (expected \"nodelist\", \"gres\")");
    }
    const std::string& text = string_at(v, where, path);
    bool ok = !text.empty() && text.size() <= 128;
    for (char c : text) {
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) ||
                  std::string_view("._-,:[]").find(c) != std::string_view::npos);
    }
    if (!ok) bad(where, path, "must be 1..128 characters of [A-Za-z0-9._-,:[]]", &v);
    (key == "nodelist" ? placement.nodelist : placement.gres) = text;
  }
  return placement;
}

constexpr const char* kInstrumentTypes[] = {"array-board", "smu", "pulse-generator",
                                            "switch-matrix", "other"};

StationInstrument instrument_from_json(const std::string& name, const nlohmann::json& value,
                                       const std::string& where) {
  const std::string path = "/instruments/" + name;
  if (!value.is_object()) {
    bad(where, path, "must be an object {\"type\": ..., \"address\": ...}", &value);
  }
  StationInstrument instrument;
  instrument.name = name;
  for (const auto& [key, v] : value.items()) {
    if (key == "type") {
      instrument.type = string_at(v, where, path + "/type");
      bool known = false;
      for (const char* t : kInstrumentTypes) known = known || instrument.type == t;
      if (!known) {
        bad(where, path + "/type",
            "must be one of array-board, smu, pulse-generator, switch-matrix, other", &v);
      }
    } else if (key == "address") {
      instrument.address = string_at(v, where, path + "/address");
      const auto& a = instrument.address;
      if (a.rfind("sim:", 0) != 0 && a.rfind("tcp:", 0) != 0 && a.rfind("serial:", 0) != 0) {
        bad(where, path + "/address",
            "must start with sim:, tcp: or serial: (e.g. serial:/dev/ttyUSB0?baud=921600, "
            "tcp:127.0.0.1:5025, sim:?seed=1)",
            &v);
      }
    } else if (key != "comment" && key != "description" && key != "model" && key != "serial") {
      bad(where, path + "/" + key,
          "is not a known key (known: type, address, model, serial, comment)");
    }
  }
  if (instrument.type.empty()) bad(where, path + "/type", "is missing (e.g. \"array-board\")");
  if (instrument.address.empty()) bad(where, path + "/address", "is missing");
  return instrument;
}

void limits_from_json(const nlohmann::json& l, const std::string& where, StationLimits& limits) {
  if (!l.is_object()) bad(where, "/limits", "must be an object", &l);
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
        bad(where, "/limits/max_pulses_per_verify", "must be an integer in 1..1000000", &value);
      }
      limits.max_pulses_per_verify = static_cast<std::uint32_t>(v);
      known = true;
    }
    if (!known) {
      bad(where, "/limits/" + key,
          "is not a known limit (known: max_read_voltage_v, max_wl_voltage_v, max_bl_voltage_v, "
          "max_sl_voltage_v, max_pulse_width_ns, max_compliance_ua, max_pulses_per_verify)");
    }
  }
}

}  // namespace

const StationInstrument* Station::array_board() const {
  for (const auto& i : instruments) {
    if (i.type == "array-board") return &i;
  }
  return nullptr;
}

Station station_from_json(const nlohmann::json& doc, const std::string& where) {
  if (!doc.is_object()) {
    throw std::invalid_argument(where +
                                ": a station file must be a JSON object with \"station\", "
                                "\"chip\", \"instruments\" and \"limits\"");
  }
  Station station;
  station.source = where;
  for (const auto& [key, value] : doc.items()) {
    if (key == "station") {
      station.name = string_at(value, where, "/station");
    } else if (key == "chip") {
      check_chip_id(value, where);
      station.chip = value.get<std::string>();
    } else if (key == "allow_pulses") {
      if (!value.is_boolean()) bad(where, "/allow_pulses", "must be true or false", &value);
      station.allow_pulses = value.get<bool>();
    } else if (key == "chips_dir") {
      const std::string& dir = string_at(value, where, "/chips_dir");
      if (dir.empty()) bad(where, "/chips_dir", "must name a folder (the chip registry)", &value);
      station.chips_dir =
          (std::filesystem::absolute(where).parent_path() / dir).lexically_normal().string();
    } else if (key == "instruments") {
      if (!value.is_object()) {
        bad(where, "/instruments", "must be an object {name: {\"type\", \"address\"}}", &value);
      }
      for (const auto& [name, v] : value.items()) {
        station.instruments.push_back(instrument_from_json(name, v, where));
      }
      int boards = 0;
      for (const auto& i : station.instruments) boards += i.type == "array-board";
      if (boards > 1) {
        bad(where, "/instruments",
            "has more than one \"array-board\" (one station drives one board; use one station "
            "file per board)");
      }
    } else if (key == "limits") {
      limits_from_json(value, where, station.limits);
    } else if (key == "board_settings") {
      station.board_settings = setting_values_from_json(value, where, "/board_settings");
    } else if (key == "slurm") {
      station.slurm = slurm_from_json(value, where);
    } else if (key != "comment" && key != "description") {
      bad(where, "/" + key,
          "is not a known key (expected \"station\", \"chip\", \"allow_pulses\", "
          "\"chips_dir\", \"instruments\", \"limits\", \"board_settings\", \"slurm\")");
    }
  }
  station.limits.station_name = station.name;
  return station;
}

Station station_from_text(std::string_view text, const std::string& where) {
  return station_from_json(common::parse_json_text(text, where), where);
}

Station load_station(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path)) {
    throw std::runtime_error("cannot read station file " + path.string() +
                             " (check the path given to --station)");
  }
  std::stringstream text;
  text << in.rdbuf();
  return station_from_text(text.str(), path.string());
}

StationLimits station_limits_from_json(const nlohmann::json& doc, const std::string& where) {
  return station_from_json(doc, where).limits;
}

StationLimits load_station_limits(const std::filesystem::path& path) {
  return load_station(path).limits;
}

std::string resolve_board_address(const std::string& device,
                                  const std::optional<std::filesystem::path>& station_file) {
  if (!device.empty()) return device;
  if (station_file) {
    const Station station = load_station(*station_file);
    if (const auto* board = station.array_board()) return board->address;
    throw std::invalid_argument(station_file->string() +
                                ": /instruments has no \"array-board\" instrument, and no "
                                "--device was given: add one to the station file or pass "
                                "--device ADDRESS");
  }
  throw std::invalid_argument(
      "no board address: pass --device ADDRESS (e.g. sim:?seed=1, tcp:HOST:PORT, "
      "serial:/dev/ttyUSB0) or --station FILE with an \"array-board\" instrument");
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

nlohmann::json to_json(const Station& station) {
  nlohmann::json j = to_json(station.limits);
  j["station"] = station.name;
  if (!station.chip.empty()) j["chip"] = station.chip;
  if (station.allow_pulses) j["allow_pulses"] = true;
  if (!station.chips_dir.empty()) j["chips_dir"] = station.chips_dir;
  nlohmann::json instruments = nlohmann::json::object();
  for (const auto& i : station.instruments) {
    instruments[i.name] = {{"type", i.type}, {"address", i.address}};
  }
  j["instruments"] = instruments;
  if (!station.board_settings.empty()) j["board_settings"] = to_json(station.board_settings);
  nlohmann::json slurm = nlohmann::json::object();
  if (!station.slurm.nodelist.empty()) slurm["nodelist"] = station.slurm.nodelist;
  if (!station.slurm.gres.empty()) slurm["gres"] = station.slurm.gres;
  if (!slurm.empty()) j["slurm"] = slurm;
  return j;
}

}  // namespace metaplast::instruments
