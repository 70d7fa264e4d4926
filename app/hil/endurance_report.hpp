// The endurance report (the paper's Fig. 5b): how many programming operations each device took,
// as a histogram (CSV and a gnuplot PNG when gnuplot is installed), against HfO2 endurance.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

namespace metaplast::hil {

inline constexpr double kHfO2EnduranceLow = 1e5, kHfO2EnduranceHigh = 1e7;

// Histogram of per-device counts in integer bins of width ceil((max + 1) / 50) starting at 0:
// {"devices", "max", "mean", "median", "bins": [{"from", "to", "devices", "percent"}],
//  "max_vs_endurance": {"low": max / 1e5, "high": max / 1e7}}.
nlohmann::json endurance_histogram(const std::vector<std::uint32_t>& writes_per_device);

// Writes dir/endurance.csv (bin_from,bin_to,devices,percent), dir/endurance.gp and, if gnuplot
// runs, dir/endurance.png; returns the histogram without its bins (for summary.json).
nlohmann::json write_endurance_report(const std::filesystem::path& dir,
                                      const std::vector<std::uint32_t>& writes_per_device);

}  // namespace metaplast::hil
