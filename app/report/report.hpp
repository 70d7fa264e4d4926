// `metaplast report DIR`: an HTML page with PNG plots (drawn by gnuplot) of a train run
// directory or a campaign run directory. Plots whose input files are absent are skipped and the
// page says which and why. Inputs and plots: docs/run-records.md "Report".
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace metaplast::report {

struct ReportFigure {
  std::string png;  // file name in DIR/report
  std::string title, caption;
};

struct ReportPage {
  std::string title;                          // the page's heading
  std::filesystem::path index;                // DIR/report/index.html
  std::vector<ReportFigure> figures;          // in page order
  std::string tables_html;                    // tables above the plots (final accuracy, levels)
  std::vector<std::filesystem::path> images;  // the PNGs written
  std::vector<std::string> missing;           // plots skipped: "<plot>: <why>"
  std::vector<std::string> errors;            // plots that failed (gnuplot's message)
};

// Writes DIR/report/index.html and its PNGs (and the .dat / .gp files gnuplot drew them from;
// each .gp names its files relative to DIR/report, where `gnuplot NAME.gp` redraws it). DIR is a
// train run (metrics.csv), a campaign run (plan.json) or a `characterize --out` folder (cdf.csv:
// its CDF and per-level table). Throws std::invalid_argument for any other DIR,
// std::runtime_error when gnuplot is not installed or a file cannot be written (naming it).
// Every file is replaced atomically: a full disk leaves the old file or none, never half of one.
ReportPage write_report(const std::filesystem::path& dir);

// (Re)writes index.html of `page` with DIR/record.json as it is now: a campaign calls it again
// when it ends, so the page's status is the campaign's final one, not "running".
void write_report_index(const std::filesystem::path& dir, const ReportPage& page);

}  // namespace metaplast::report
