// `metaplast calibrate`: the calibration file from the bench measurements (docs/calibration.md,
// "Calibration from measurements"). The work is bench::fit_calibration; this file maps options
// and prints what came from where.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "app/bench/calibration_from_measurements.hpp"
#include "app/cli/commands.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::cli {

namespace {

struct CalibrateArgs {
  std::string base, out;
  std::vector<std::string> from;
  bool include_unidentifiable = false;
};

void run_calibrate(const CalibrateArgs& a) {
  bench::CalibrationFitOptions options;
  if (!a.base.empty()) options.base = a.base;
  for (const auto& dir : a.from) options.measurements.emplace_back(dir);
  options.include_unidentifiable = a.include_unidentifiable;
  const auto fitted = bench::fit_calibration(options);
  common::write_file_atomically(a.out, fitted.calibration.dump(2) + "\n");
  std::printf("calibration of chip %s from %zu measurement(s) over %s\n",
              fitted.chip_id.empty() ? "(unnamed)" : fitted.chip_id.c_str(), a.from.size(),
              a.base.empty() ? "the built-in model" : a.base.c_str());
  std::fputs(bench::fitted_calibration_table(fitted).c_str(), stdout);
  std::printf("wrote %s (its \"measurements\" section lists every field's source)\n",
              a.out.c_str());
}

}  // namespace

void add_calibrate_command(CLI::App& root) {
  auto* cmd = root.add_subcommand(
      "calibrate",
      "Write a calibration file from bench measurements (metaplast measure ...) over a base "
      "calibration (docs/calibration.md)");
  auto a = std::make_shared<CalibrateArgs>();
  cmd->add_option("--from", a->from,
                  "Measurement folder (with measurement.json); repeat for several. A field given "
                  "by several is taken from the last")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--base", a->base,
                  "Calibration to start from, e.g. a characterisation's calibration.json "
                  "(default: the built-in model)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", a->out, "Calibration file to write")->required();
  cmd->add_flag("--include-unidentifiable", a->include_unidentifiable,
                "Also write the values a measurement marked as not determined by its data");
  cmd->callback([a] { run_calibrate(*a); });
}

}  // namespace metaplast::cli
