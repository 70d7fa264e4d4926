#include "app/bench/calibration_from_measurements.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>
#include <stdexcept>

#include "app/bench/measurement.hpp"
#include "common/json_file.hpp"
#include "devices/calibration.hpp"

namespace metaplast::bench {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Top-level keys that are not device parameters: never "measured", never "not measured".
const std::set<std::string> kNotParameters = {
    "schema_version", "kind", "identity", "comment", "characterization", "measurements"};

// The calibration's parameter fields as JSON pointers: objects are descended into, arrays
// (the level table) are one field.
void leaf_pointers(const json& j, const std::string& prefix, std::vector<std::string>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (prefix.empty() && kNotParameters.count(it.key())) continue;
    const std::string pointer = prefix + "/" + it.key();
    if (it->is_object()) {
      leaf_pointers(*it, pointer, out);
    } else {
      out.push_back(pointer);
    }
  }
}

// The groups a characterisation measured: every group but those it lists as copied from its
// base (docs/calibration.md, "Not measured").
std::vector<CalibrationFieldSource> characterization_fields(const json& base,
                                                            const fs::path& file) {
  std::vector<CalibrationFieldSource> fields;
  if (!base.contains("characterization")) return fields;
  std::set<std::string> copied;
  for (const auto& g :
       base["characterization"].value("not_measured_copied_from_base", json::array())) {
    if (g.is_string()) copied.insert(g.get<std::string>());
  }
  std::vector<std::string> pointers;
  leaf_pointers(base, "", pointers);
  for (const auto& p : pointers) {
    const std::string group = p.substr(1, p.find('/', 1) - 1);
    if (copied.count(group)) continue;
    fields.push_back({p, base.at(json::json_pointer(p)), std::nullopt, true,
                      "level statistics of the characterisation", "characterization", file});
  }
  return fields;
}

struct Source {
  fs::path dir;
  json record;  // measurement.json
};

Source read_measurement(const fs::path& dir) {
  const fs::path file = dir / kRecordFile;
  if (!fs::exists(file) && fs::exists(dir / "calibration.json")) {
    throw std::invalid_argument(dir.string() + " is a characterisation (calibration.json, no " +
                                kRecordFile + "): give its calibration.json as --base");
  }
  if (!fs::exists(file)) {
    throw std::invalid_argument(dir.string() + ": no " + kRecordFile +
                                " (give the folder of a `metaplast measure` run or campaign "
                                "measurement step)");
  }
  Source s{dir, common::read_json_file(file)};
  const std::string status = s.record.value("status", "");
  const std::string kind = s.record.value("kind", "");
  if (status != "completed") {
    throw std::invalid_argument(file.string() + ": the " + kind + " measurement is " +
                                (status.empty() ? "of unknown status" : status) +
                                "; finish it first (metaplast measure " + kind + " --resume " +
                                dir.string() + ")");
  }
  return s;
}

void require_same_chip(std::string& chip, const std::string& candidate, const std::string& what) {
  if (candidate.empty()) return;
  if (chip.empty()) {
    chip = candidate;
  } else if (chip != candidate) {
    throw std::invalid_argument(what + " measured chip " + candidate + ", the other sources chip " +
                                chip + ": a calibration describes one chip (fit each separately)");
  }
}

// The fields one measurement gives (result.calibration), checked against the schema's fields.
std::vector<CalibrationFieldSource> measured_fields(const Source& s,
                                                    const std::set<std::string>& known) {
  std::vector<CalibrationFieldSource> fields;
  const fs::path file = s.dir / kRecordFile;
  const json result = s.record.value("result", json::object());
  const json given = result.value("calibration", json::object());
  if (!given.is_object()) {
    throw std::invalid_argument(file.string() + ": /result/calibration: expected an object");
  }
  for (auto it = given.begin(); it != given.end(); ++it) {
    const std::string where = file.string() + ": /result/calibration/" + it.key();
    if (!known.count(it.key())) {
      throw std::invalid_argument(where +
                                  ": not a field of the calibration schema "
                                  "(docs/calibration.md, Fields)");
    }
    if (!it->is_object() || !it->contains("value")) {
      throw std::invalid_argument(where + ": expected {\"value\": ..., \"standard_error\": ...}");
    }
    CalibrationFieldSource f;
    f.pointer = it.key();
    f.value = it->at("value");
    const json se = it->value("standard_error", json());
    if (se.is_number()) f.standard_error = se.get<double>();
    f.identifiable = it->value("identifiable", true);
    f.note = it->value("note", "");
    f.kind = s.record.value("kind", "");
    f.source = s.dir;
    fields.push_back(std::move(f));
  }
  return fields;
}

json field_json(const CalibrationFieldSource& f) {
  json j = {{"value", f.value},
            {"source", f.kind},
            {"from", f.source.string()},
            {"identifiable", f.identifiable}};
  j["standard_error"] = f.standard_error ? json(*f.standard_error) : json(nullptr);
  if (!f.note.empty()) j["note"] = f.note;
  return j;
}

json source_json(const Source& s) {
  return {{"kind", s.record.value("kind", "")},
          {"folder", s.dir.string()},
          {"chip_id", s.record.value("chip_id", "")},
          {"board", s.record.value("board", json::object())},
          {"board_settings", s.record.value("board_settings", json::object())},
          {"started", s.record.value("started", "")},
          {"finished", s.record.value("finished", "")}};
}

// Takes a field: a later source replaces an earlier one (listed as overridden).
void take_field(CalibrationFieldSource f, FittedCalibration& out) {
  auto same = std::find_if(out.applied.begin(), out.applied.end(),
                           [&](const auto& c) { return c.pointer == f.pointer; });
  if (same == out.applied.end()) {
    out.applied.push_back(std::move(f));
    return;
  }
  out.overridden.push_back(*same);
  *same = std::move(f);
}

// The base characterisation's fields, then every measurement's, into out.applied (and
// not_applied, overridden, chip_id). Returns the measurements read.
std::vector<Source> collect_fields(const CalibrationFitOptions& options, const json& base,
                                   const std::vector<std::string>& pointers,
                                   FittedCalibration& out) {
  if (options.base && base.contains("characterization")) {
    for (auto& f : characterization_fields(base, *options.base)) take_field(std::move(f), out);
    require_same_chip(out.chip_id, base["identity"].value("chip_id", ""),
                      "the base characterisation " + options.base->string());
  }
  const std::set<std::string> known(pointers.begin(), pointers.end());
  std::vector<Source> sources;
  for (const auto& dir : options.measurements) {
    Source s = read_measurement(dir);
    require_same_chip(out.chip_id, s.record.value("chip_id", ""),
                      "the measurement in " + dir.string());
    for (auto& f : measured_fields(s, known)) {
      if (!f.identifiable && !options.include_unidentifiable) {
        out.not_applied.push_back(std::move(f));
      } else {
        take_field(std::move(f), out);
      }
    }
    sources.push_back(std::move(s));
  }
  return sources;
}

// Identity: the chip measured, the board of the last measurement, the end of the last one.
void set_identity(json& identity, const std::string& chip_id, const std::vector<Source>& sources,
                  bool over_characterization) {
  if (!chip_id.empty()) identity["chip_id"] = chip_id;
  if (sources.empty()) return;
  const json board = sources.back().record.value("board", json::object());
  identity["board_model"] = board.value("model", identity.value("board_model", ""));
  identity["board_serial"] = board.value("serial", identity.value("board_serial", ""));
  std::string date;
  for (const auto& s : sources) date = std::max(date, s.record.value("finished", std::string()));
  if (!date.empty()) identity["date"] = date;
  identity["source"] = over_characterization ? "characterization+measurements" : "measurements";
}

json measurements_section(const FittedCalibration& out, const std::vector<Source>& sources,
                          const std::string& base_name) {
  json section = {
      {"base", base_name},           {"sources", json::array()},
      {"fields", json::object()},    {"not_identifiable_kept_from_base", json::object()},
      {"overridden", json::array()}, {"not_measured", out.not_measured}};
  for (const auto& s : sources) section["sources"].push_back(source_json(s));
  for (const auto& f : out.applied) section["fields"][f.pointer] = field_json(f);
  for (const auto& f : out.not_applied) {
    section["not_identifiable_kept_from_base"][f.pointer] = field_json(f);
  }
  for (const auto& f : out.overridden) {
    json j = field_json(f);
    j["field"] = f.pointer;
    section["overridden"].push_back(j);
  }
  return section;
}

}  // namespace

json calibration_field(const FittedParameter& parameter, const std::string& note) {
  return {{"value", parameter.value},
          {"standard_error", parameter.standard_error},
          {"identifiable", parameter.identifiable},
          {"note", note}};
}

FittedCalibration fit_calibration(const CalibrationFitOptions& options) {
  FittedCalibration out;
  const json base =
      options.base ? common::read_json_file(*options.base)
                   : json::parse(devices::calibration_to_json(devices::Calibration::defaults()));
  if (options.base) devices::calibration_from_json(base.dump(), options.base->string());
  std::vector<std::string> pointers;
  leaf_pointers(base, "", pointers);

  const std::vector<Source> sources = collect_fields(options, base, pointers, out);
  json calibration = base;
  calibration.erase("measurements");
  std::set<std::string> measured;
  for (const auto& f : out.applied) {
    calibration[json::json_pointer(f.pointer)] = f.value;
    measured.insert(f.pointer);
  }
  for (const auto& p : pointers) {
    if (!measured.count(p)) out.not_measured.push_back(p);
  }
  set_identity(calibration["identity"], out.chip_id, sources, base.contains("characterization"));
  calibration["measurements"] = measurements_section(
      out, sources, options.base ? options.base->string() : "the built-in model");

  // The schema's own checks (ranges, level order), naming the field.
  devices::calibration_from_json(calibration.dump(), "the fitted calibration");
  out.calibration = std::move(calibration);
  return out;
}

std::string fitted_calibration_table(const FittedCalibration& fitted) {
  std::ostringstream o;
  auto line = [&](const CalibrationFieldSource& f, const char* mark) {
    char value[64] = "", se[64] = "", buffer[320];
    if (f.value.is_number()) {
      std::snprintf(value, sizeof value, "%.4g", f.value.get<double>());
    } else if (f.value.is_array()) {
      std::snprintf(value, sizeof value, "%zu entries", f.value.size());
    }
    if (f.standard_error) std::snprintf(se, sizeof se, "+- %.2g", *f.standard_error);
    std::snprintf(buffer, sizeof buffer, "  %-40s %12s %-10s %s%s\n", f.pointer.c_str(), value, se,
                  f.kind.c_str(), mark);
    o << buffer;
  };
  o << "measured (written into the calibration):\n";
  for (const auto& f : fitted.applied) line(f, "");
  if (!fitted.not_applied.empty()) {
    o << "measured but not determined by the data (the base's value kept):\n";
    for (const auto& f : fitted.not_applied) line(f, " (not identifiable)");
  }
  o << "not measured (kept from the base): " << fitted.not_measured.size() << " fields\n";
  return o.str();
}

}  // namespace metaplast::bench
