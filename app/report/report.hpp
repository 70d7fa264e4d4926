// `metaplast report DIR`: an HTML page with PNG plots (drawn by gnuplot) of a train run
// directory or a campaign run directory. Plots whose input files are absent are skipped and the
// page says which and why. Inputs and plots: docs/run-records.md "Report".
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace metaplast::report {

struct ReportPage {
  std::filesystem::path index;                // DIR/report/index.html
  std::vector<std::filesystem::path> images;  // the PNGs written
  std::vector<std::string> missing;           // plots skipped: "<plot>: <why>"
  std::vector<std::string> errors;            // plots that failed (gnuplot's message)
};

// Writes DIR/report/index.html and its PNGs (and the .dat / .gp files gnuplot drew them from).
// Throws std::invalid_argument when DIR is neither a train run (metrics.csv) nor a campaign run
// (plan.json), std::runtime_error when gnuplot cannot be run at all.
ReportPage write_report(const std::filesystem::path& dir);

}  // namespace metaplast::report
