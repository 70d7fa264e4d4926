// The calibration from measurements (docs/calibration.md, "Calibration from measurements"): the
// device parameters the bench measurements fitted (retention, read disturb, forming, the
// programming window, endurance), written into a calibration file over a base calibration (a
// characterisation's calibration.json, or the built-in model), with where every field came from.
//
// Every measurement states what it determined in its measurement.json, under
// result.calibration: an object whose keys are JSON pointers into the calibration schema
// ("/relaxation/drift_per_decade_rel") and whose values are
//   {"value": <number, or the field's JSON value>, "standard_error": <number or null>,
//    "identifiable": <bool>, "note": "<how it was obtained>"}
// (calibration_field builds one). fit_calibration reads those, checks that every source measured
// the same chip, applies the identifiable ones and records the rest.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace metaplast::bench {

// One fitted parameter: its estimate, the standard error of the estimate, and whether the data
// determine it (a time constant outside the measured times does not).
struct FittedParameter {
  double value = 0, standard_error = 0;
  bool identifiable = false;
};

// The entry of result.calibration for one fitted parameter (see the top of this file).
nlohmann::json calibration_field(const FittedParameter& parameter, const std::string& note);

// One calibration field a source gave.
struct CalibrationFieldSource {
  std::string pointer;   // "/relaxation/drift_per_decade_rel"
  nlohmann::json value;  // as written into the calibration
  std::optional<double> standard_error;
  bool identifiable = true;
  std::string note;              // how the measurement obtained it
  std::string kind;              // "retention", "characterization", ...
  std::filesystem::path source;  // the measurement folder (or the base calibration file)
};

struct CalibrationFitOptions {
  // The calibration to start from: a calibration.json (a characterisation's, whose measured
  // fields count as measured) or none (the built-in model).
  std::optional<std::filesystem::path> base;
  // Measurement folders (each with measurement.json), in order: a field given by several is
  // taken from the last (the others are listed as overridden).
  std::vector<std::filesystem::path> measurements;
  // Apply fields the measurement marked not identifiable (default: keep the base's value).
  bool include_unidentifiable = false;
};

struct FittedCalibration {
  nlohmann::json calibration;  // the calibration file's JSON (with its "measurements" section)
  std::string chip_id;
  std::vector<CalibrationFieldSource> applied;      // measured and written
  std::vector<CalibrationFieldSource> not_applied;  // measured, not identifiable: base kept
  std::vector<CalibrationFieldSource> overridden;   // given again by a later source
  std::vector<std::string> not_measured;            // leaf pointers kept from the base
};

// Reads the sources and builds the calibration. Throws std::invalid_argument naming the file and
// what to do when a folder has no completed measurement.json, when sources measured different
// chips (or a characterisation of another chip is the base), or when a field is not one of the
// calibration schema's; devices::CalibrationError (naming the field) when a fitted value is out
// of the schema's range.
FittedCalibration fit_calibration(const CalibrationFitOptions& options);

// The fields and their sources as a table for the terminal.
std::string fitted_calibration_table(const FittedCalibration& fitted);

}  // namespace metaplast::bench
