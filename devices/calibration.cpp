#include "devices/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/json_file.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::devices {

using nlohmann::json;

double default_c2c_sigma_us(double median_conductance_us) {
  return std::max(0.0, 4.78 - 0.0091 * median_conductance_us);
}

Calibration Calibration::defaults() {
  Calibration c;
  // Access transistor in saturation: I = k (V_g - V_th)^2, k = 200 uA/V^2, V_th = 0.6 V.
  for (int i = 1; i <= 8; ++i) {
    HcsLevel level;
    level.icc_ua = 10.0 * i;
    level.gate_voltage_v = std::round((0.6 + std::sqrt(level.icc_ua / 200.0)) * 1000.0) / 1000.0;
    level.median_conductance_us = level.icc_ua / 0.5;
    level.c2c_sigma_us = default_c2c_sigma_us(level.median_conductance_us);
    level.d2d_sigma_rel = 0.03;
    c.hcs_levels.push_back(level);
  }
  return c;
}

std::vector<double> Calibration::level_medians_us() const {
  std::vector<double> out{lcs.median_conductance_us};
  for (const auto& level : hcs_levels) out.push_back(level.median_conductance_us);
  return out;
}

namespace {

void require(bool ok, const std::string& where, const std::string& path, const std::string& what) {
  if (!ok) throw CalibrationError(where + ": at " + path + ": expected " + what);
}

void require_finite_range(double v, double lo, double hi, const std::string& where,
                          const std::string& path) {
  std::ostringstream what;
  what << "a number in [" << lo << ", " << hi << "], got " << v;
  require(std::isfinite(v) && v >= lo && v <= hi, where, path, what.str());
}

}  // namespace

void Calibration::validate(const std::string& where) const {
  require(!hcs_levels.empty() && hcs_levels.size() <= 64, where, "/hcs_levels",
          "1 to 64 HCS levels, got " + std::to_string(hcs_levels.size()));
  require_finite_range(read_voltage_v, 0.01, 1.0, where, "/read/voltage_v");
  for (std::size_t i = 0; i < hcs_levels.size(); ++i) {
    const auto& l = hcs_levels[i];
    const std::string p = "/hcs_levels/" + std::to_string(i);
    require_finite_range(l.icc_ua, 0.1, 1000.0, where, p + "/icc_ua");
    require_finite_range(l.gate_voltage_v, 0.0, 5.0, where, p + "/gate_voltage_v");
    require_finite_range(l.median_conductance_us, 0.01, 10000.0, where,
                         p + "/median_conductance_us");
    require_finite_range(l.c2c_sigma_us, 0.0, 1000.0, where, p + "/c2c_sigma_us");
    require_finite_range(l.d2d_sigma_rel, 0.0, 1.0, where, p + "/d2d_sigma_rel");
    if (i > 0) {
      const auto& prev = hcs_levels[i - 1];
      require(l.icc_ua > prev.icc_ua && l.gate_voltage_v > prev.gate_voltage_v &&
                  l.median_conductance_us > prev.median_conductance_us,
              where, p, "levels strictly increasing in icc_ua, gate_voltage_v and median");
    }
  }
  require_finite_range(lcs.median_conductance_us, 1e-4, hcs_levels.front().median_conductance_us,
                       where, "/lcs/median_conductance_us");
  require_finite_range(lcs.c2c_sigma_ln, 0.0, 5.0, where, "/lcs/c2c_sigma_ln");
  require_finite_range(lcs.d2d_sigma_ln, 0.0, 5.0, where, "/lcs/d2d_sigma_ln");
  require_finite_range(read_noise.relative, 0.0, 1.0, where, "/read/noise_relative");
  require_finite_range(read_noise.absolute_us, 0.0, 100.0, where, "/read/noise_absolute_us");
  require_finite_range(relaxation.step_mean_rel, -1.0, 1.0, where, "/relaxation/step_mean_rel");
  require_finite_range(relaxation.step_sigma_rel, 0.0, 1.0, where, "/relaxation/step_sigma_rel");
  require_finite_range(relaxation.step_time_constant_s, 1e-9, 1e9, where,
                       "/relaxation/step_time_constant_s");
  require_finite_range(relaxation.drift_per_decade_rel, -1.0, 1.0, where,
                       "/relaxation/drift_per_decade_rel");
  require_finite_range(relaxation.drift_reference_s, 1e-12, 1e9, where,
                       "/relaxation/drift_reference_s");
  require_finite_range(endurance.median_cycles, 1.0, 1e15, where, "/endurance/median_cycles");
  require_finite_range(endurance.sigma_ln, 0.0, 10.0, where, "/endurance/sigma_ln");
  require_finite_range(endurance.stuck_hcs_probability, 0.0, 1.0, where,
                       "/endurance/stuck_hcs_probability");
  require_finite_range(yield.defect_fraction, 0.0, 1.0, where, "/yield/defect_fraction");
  require_finite_range(yield.unformable_share, 0.0, 1.0, where, "/yield/unformable_share");
  require_finite_range(pristine.median_conductance_us, 0.0, 1000.0, where,
                       "/pristine/median_conductance_us");
  require_finite_range(pristine.sigma_ln, 0.0, 5.0, where, "/pristine/sigma_ln");
  require_finite_range(forming.median_voltage_v, 0.0, 10.0, where, "/forming/median_voltage_v");
  require_finite_range(forming.sigma_v, 0.0, 5.0, where, "/forming/sigma_v");
  require_finite_range(forming.success_conductance_us, 0.0, 10000.0, where,
                       "/forming/success_conductance_us");
  require_finite_range(switching.set_threshold_bl_v, 0.0, 10.0, where,
                       "/switching/set_threshold_bl_v");
  require_finite_range(switching.reset_threshold_sl_v, 0.0, 10.0, where,
                       "/switching/reset_threshold_sl_v");
  require_finite_range(switching.min_pulse_width_ns, 0.0, 1e9, where,
                       "/switching/min_pulse_width_ns");
  require_finite_range(forming.reference_width_ns, 1e-3, 1e9, where, "/forming/reference_width_ns");
  require_finite_range(forming.width_v_per_decade, 0.0, 5.0, where, "/forming/width_v_per_decade");
  require_finite_range(forming.pulse_sigma_v, 0.0, 5.0, where, "/forming/pulse_sigma_v");
  // The reference pulses are the ones the medians were measured with: they must switch.
  require_finite_range(switching.reference_width_ns, std::max(1e-3, switching.min_pulse_width_ns),
                       1e9, where, "/switching/reference_width_ns");
  require_finite_range(switching.width_v_per_decade, 0.0, 5.0, where,
                       "/switching/width_v_per_decade");
  require_finite_range(switching.set_transition_v, 0.0, 10.0, where, "/switching/set_transition_v");
  require_finite_range(switching.set_reference_bl_v, switching.set_threshold_bl_v, 10.0, where,
                       "/switching/set_reference_bl_v");
  require_finite_range(switching.set_overdrive_rel_per_v, 0.0, 1.0, where,
                       "/switching/set_overdrive_rel_per_v");
  require_finite_range(switching.reset_reference_sl_v, switching.reset_threshold_sl_v, 10.0, where,
                       "/switching/reset_reference_sl_v");
  require_finite_range(switching.reset_depth_ln_per_v, 0.0, 20.0, where,
                       "/switching/reset_depth_ln_per_v");
  require_finite_range(read_disturb.onset_voltage_v, 0.0, 10.0, where,
                       "/read_disturb/onset_voltage_v");
  require_finite_range(read_disturb.slope_v, 1e-3, 10.0, where, "/read_disturb/slope_v");
  require_finite_range(read_disturb.rel_per_read, 0.0, 1e-2, where, "/read_disturb/rel_per_read");
}

std::string calibration_to_json(const Calibration& c) {
  nlohmann::ordered_json j;  // keys in schema order, schema_version first
  j["schema_version"] = Calibration::kSchemaVersion;
  j["kind"] = "metaplast.calibration";
  j["identity"] = {{"board_model", c.identity.board_model},
                   {"board_serial", c.identity.board_serial},
                   {"chip_id", c.identity.chip_id},
                   {"date", c.identity.date},
                   {"source", c.identity.source}};
  j["read"] = {{"voltage_v", c.read_voltage_v},
               {"noise_relative", c.read_noise.relative},
               {"noise_absolute_us", c.read_noise.absolute_us}};
  auto levels = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < c.hcs_levels.size(); ++i) {
    const auto& l = c.hcs_levels[i];
    levels.push_back({{"level", i + 1},
                      {"icc_ua", l.icc_ua},
                      {"gate_voltage_v", l.gate_voltage_v},
                      {"median_conductance_us", l.median_conductance_us},
                      {"c2c_sigma_us", l.c2c_sigma_us},
                      {"d2d_sigma_rel", l.d2d_sigma_rel}});
  }
  j["hcs_levels"] = levels;
  j["lcs"] = {{"median_conductance_us", c.lcs.median_conductance_us},
              {"c2c_sigma_ln", c.lcs.c2c_sigma_ln},
              {"d2d_sigma_ln", c.lcs.d2d_sigma_ln}};
  j["relaxation"] = {{"enabled", c.relaxation.enabled},
                     {"step_mean_rel", c.relaxation.step_mean_rel},
                     {"step_sigma_rel", c.relaxation.step_sigma_rel},
                     {"step_time_constant_s", c.relaxation.step_time_constant_s},
                     {"drift_per_decade_rel", c.relaxation.drift_per_decade_rel},
                     {"drift_reference_s", c.relaxation.drift_reference_s}};
  j["endurance"] = {{"median_cycles", c.endurance.median_cycles},
                    {"sigma_ln", c.endurance.sigma_ln},
                    {"stuck_hcs_probability", c.endurance.stuck_hcs_probability}};
  j["yield"] = {{"defect_fraction", c.yield.defect_fraction},
                {"unformable_share", c.yield.unformable_share}};
  j["pristine"] = {{"median_conductance_us", c.pristine.median_conductance_us},
                   {"sigma_ln", c.pristine.sigma_ln}};
  j["forming"] = {{"median_voltage_v", c.forming.median_voltage_v},
                  {"sigma_v", c.forming.sigma_v},
                  {"success_conductance_us", c.forming.success_conductance_us},
                  {"reference_width_ns", c.forming.reference_width_ns},
                  {"width_v_per_decade", c.forming.width_v_per_decade},
                  {"pulse_sigma_v", c.forming.pulse_sigma_v}};
  j["switching"] = {{"set_threshold_bl_v", c.switching.set_threshold_bl_v},
                    {"reset_threshold_sl_v", c.switching.reset_threshold_sl_v},
                    {"min_pulse_width_ns", c.switching.min_pulse_width_ns},
                    {"reference_width_ns", c.switching.reference_width_ns},
                    {"width_v_per_decade", c.switching.width_v_per_decade},
                    {"set_transition_v", c.switching.set_transition_v},
                    {"set_reference_bl_v", c.switching.set_reference_bl_v},
                    {"set_overdrive_rel_per_v", c.switching.set_overdrive_rel_per_v},
                    {"reset_reference_sl_v", c.switching.reset_reference_sl_v},
                    {"reset_depth_ln_per_v", c.switching.reset_depth_ln_per_v}};
  j["read_disturb"] = {{"onset_voltage_v", c.read_disturb.onset_voltage_v},
                       {"slope_v", c.read_disturb.slope_v},
                       {"rel_per_read", c.read_disturb.rel_per_read}};
  return j.dump(2) + "\n";
}

namespace {

// Reads fields of one JSON object, naming the source and the JSON path on every error.
class Reader {
 public:
  Reader(const json& object, std::string source, std::string path)
      : object_(object), source_(std::move(source)), path_(std::move(path)) {
    if (!object_.is_object()) fail(path_, "an object, got " + type_of(object_));
  }

  bool has(const std::string& key) const {
    known_.push_back(key);
    return object_.contains(key);
  }

  // After the last field: a key the reader did not ask for is a typo or a newer schema, never
  // silently ignored.
  void no_other_keys() const {
    for (const auto& [key, value] : object_.items()) {
      if (key == "comment") continue;
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        std::string list;
        for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
        fail(path_ + "/" + key, "a known key (" + list + "), got an unknown key");
      }
    }
  }

  Reader child(const std::string& key) const {
    if (!has(key)) fail(path_ + "/" + key, "a required object (missing)");
    return Reader(object_.at(key), source_, path_ + "/" + key);
  }

  void number(const std::string& key, double& out, bool required = false) const {
    if (!has(key)) {
      if (required) fail(path_ + "/" + key, "a required number (missing)");
      return;
    }
    const json& v = object_.at(key);
    if (!v.is_number()) fail(path_ + "/" + key, "a number, got " + type_of(v));
    out = v.get<double>();
  }

  void boolean(const std::string& key, bool& out) const {
    if (!has(key)) return;
    const json& v = object_.at(key);
    if (!v.is_boolean()) fail(path_ + "/" + key, "true or false, got " + type_of(v));
    out = v.get<bool>();
  }

  void string(const std::string& key, std::string& out) const {
    if (!has(key)) return;
    const json& v = object_.at(key);
    if (!v.is_string()) fail(path_ + "/" + key, "a string, got " + type_of(v));
    out = v.get<std::string>();
  }

  const json& raw(const std::string& key) const { return object_.at(key); }
  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw CalibrationError(source_ + ": at " + path + ": expected " + what +
                           " (see docs/calibration.md)");
  }

  static std::string type_of(const json& v) {
    return v.is_null() ? "null" : std::string(v.type_name());
  }

 private:
  const json& object_;
  std::string source_;
  std::string path_;
  mutable std::vector<std::string> known_;  // keys asked for, for no_other_keys()
};

}  // namespace

Calibration calibration_from_json(const std::string& text, const std::string& source_name) {
  json j;
  try {
    j = common::parse_json_text(text, source_name);
  } catch (const common::JsonFileError& e) {
    throw CalibrationError(std::string(e.what()) + " (see docs/calibration.md)");
  }
  Reader root(j, source_name, "");
  double version = 0;
  root.number("schema_version", version, true);
  // Version 1 lacks the pulse-condition parameters (they keep their defaults, which give the
  // version-1 model at the default board pulses); its files are read, never written.
  if (version != 1 && version != Calibration::kSchemaVersion) {
    root.fail("/schema_version",
              "schema version 1 or " + std::to_string(Calibration::kSchemaVersion) + ", got " +
                  j.at("schema_version").dump() + " (written by a newer metaplast?)");
  }
  if (root.has("kind")) {
    std::string kind;
    root.string("kind", kind);
    if (kind != "metaplast.calibration") root.fail("/kind", "\"metaplast.calibration\"");
  }

  Calibration c;
  c.hcs_levels.clear();
  if (root.has("identity")) {
    Reader r = root.child("identity");
    r.string("board_model", c.identity.board_model);
    r.string("board_serial", c.identity.board_serial);
    r.string("chip_id", c.identity.chip_id);
    r.string("date", c.identity.date);
    r.string("source", c.identity.source);
    r.no_other_keys();
  }
  if (root.has("read")) {
    Reader r = root.child("read");
    r.number("voltage_v", c.read_voltage_v);
    r.number("noise_relative", c.read_noise.relative);
    r.number("noise_absolute_us", c.read_noise.absolute_us);
    r.no_other_keys();
  }
  if (!root.has("hcs_levels")) root.fail("/hcs_levels", "a required array of levels (missing)");
  const json& levels = root.raw("hcs_levels");
  if (!levels.is_array()) root.fail("/hcs_levels", "an array, got " + Reader::type_of(levels));
  for (std::size_t i = 0; i < levels.size(); ++i) {
    Reader r(levels[i], source_name, "/hcs_levels/" + std::to_string(i));
    HcsLevel l;
    if (r.has("level")) {
      double index = 0;
      r.number("level", index);
      if (index != static_cast<double>(i + 1))
        r.fail(r.path() + "/level", "level " + std::to_string(i + 1) + " (levels in order)");
    }
    r.number("icc_ua", l.icc_ua, true);
    r.number("gate_voltage_v", l.gate_voltage_v, true);
    r.number("median_conductance_us", l.median_conductance_us, true);
    l.c2c_sigma_us = default_c2c_sigma_us(l.median_conductance_us);
    r.number("c2c_sigma_us", l.c2c_sigma_us);
    l.d2d_sigma_rel = 0.03;
    r.number("d2d_sigma_rel", l.d2d_sigma_rel);
    r.no_other_keys();
    c.hcs_levels.push_back(l);
  }
  if (!root.has("lcs")) root.fail("/lcs", "a required object (missing)");
  {
    Reader r = root.child("lcs");
    r.number("median_conductance_us", c.lcs.median_conductance_us, true);
    r.number("c2c_sigma_ln", c.lcs.c2c_sigma_ln, true);
    r.number("d2d_sigma_ln", c.lcs.d2d_sigma_ln);
    r.no_other_keys();
  }
  if (root.has("relaxation")) {
    Reader r = root.child("relaxation");
    r.boolean("enabled", c.relaxation.enabled);
    r.number("step_mean_rel", c.relaxation.step_mean_rel);
    r.number("step_sigma_rel", c.relaxation.step_sigma_rel);
    r.number("step_time_constant_s", c.relaxation.step_time_constant_s);
    r.number("drift_per_decade_rel", c.relaxation.drift_per_decade_rel);
    r.number("drift_reference_s", c.relaxation.drift_reference_s);
    r.no_other_keys();
  }
  if (root.has("endurance")) {
    Reader r = root.child("endurance");
    r.number("median_cycles", c.endurance.median_cycles);
    r.number("sigma_ln", c.endurance.sigma_ln);
    r.number("stuck_hcs_probability", c.endurance.stuck_hcs_probability);
    r.no_other_keys();
  }
  if (root.has("yield")) {
    Reader r = root.child("yield");
    r.number("defect_fraction", c.yield.defect_fraction);
    r.number("unformable_share", c.yield.unformable_share);
    r.no_other_keys();
  }
  if (root.has("pristine")) {
    Reader r = root.child("pristine");
    r.number("median_conductance_us", c.pristine.median_conductance_us);
    r.number("sigma_ln", c.pristine.sigma_ln);
    r.no_other_keys();
  }
  if (root.has("forming")) {
    Reader r = root.child("forming");
    r.number("median_voltage_v", c.forming.median_voltage_v);
    r.number("sigma_v", c.forming.sigma_v);
    r.number("success_conductance_us", c.forming.success_conductance_us);
    if (version >= 2) {
      r.number("reference_width_ns", c.forming.reference_width_ns);
      r.number("width_v_per_decade", c.forming.width_v_per_decade);
      r.number("pulse_sigma_v", c.forming.pulse_sigma_v);
    }
    r.no_other_keys();
  }
  if (root.has("switching")) {
    Reader r = root.child("switching");
    r.number("set_threshold_bl_v", c.switching.set_threshold_bl_v);
    r.number("reset_threshold_sl_v", c.switching.reset_threshold_sl_v);
    r.number("min_pulse_width_ns", c.switching.min_pulse_width_ns);
    // A reference pulse not given is the board default, or the threshold when that is higher
    // (a version-1 file with a high threshold was measured with pulses that did switch).
    auto& sw = c.switching;
    sw.set_reference_bl_v = std::max(sw.set_reference_bl_v, sw.set_threshold_bl_v);
    sw.reset_reference_sl_v = std::max(sw.reset_reference_sl_v, sw.reset_threshold_sl_v);
    sw.reference_width_ns = std::max(sw.reference_width_ns, sw.min_pulse_width_ns);
    if (version >= 2) {
      r.number("reference_width_ns", c.switching.reference_width_ns);
      r.number("width_v_per_decade", c.switching.width_v_per_decade);
      r.number("set_transition_v", c.switching.set_transition_v);
      r.number("set_reference_bl_v", c.switching.set_reference_bl_v);
      r.number("set_overdrive_rel_per_v", c.switching.set_overdrive_rel_per_v);
      r.number("reset_reference_sl_v", c.switching.reset_reference_sl_v);
      r.number("reset_depth_ln_per_v", c.switching.reset_depth_ln_per_v);
    }
    r.no_other_keys();
  }
  if (version >= 2 && root.has("read_disturb")) {
    Reader r = root.child("read_disturb");
    r.number("onset_voltage_v", c.read_disturb.onset_voltage_v);
    r.number("slope_v", c.read_disturb.slope_v);
    r.number("rel_per_read", c.read_disturb.rel_per_read);
    r.no_other_keys();
  }
  root.has("comment");
  root.has("characterization");  // the measurement summary `metaplast characterize` adds
  root.has("measurements");      // where each field came from (`metaplast calibrate`)
  root.has("hcs_levels");
  root.no_other_keys();
  c.validate(source_name);
  return c;
}

Calibration load_calibration(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path)) {
    throw CalibrationError(
        path.string() +
        ": cannot open calibration file (check the path; `metaplast characterize` "
        "writes one, `metaplast-simboard --write-default-calibration FILE` "
        "writes the defaults)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return calibration_from_json(text.str(), path.string());
}

void save_calibration(const Calibration& calibration, const std::filesystem::path& path) {
  calibration.validate(path.string());
  try {
    common::write_file_atomically(path, calibration_to_json(calibration));
  } catch (const std::exception& e) {
    throw CalibrationError(e.what());
  }
}

}  // namespace metaplast::devices
