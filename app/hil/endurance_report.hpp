// The endurance report (the paper's Fig. 5b): how many programming operations each device took,
// as one histogram per kind of device (CSV and a gnuplot PNG when gnuplot is installed), against
// HfO2 endurance. Board cells count real SET + RESET pulses, virtual devices simulated pulses,
// ideal layers (no device) level changes: the three are never mixed (docs/run-records.md
// "Endurance report").
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace metaplast::hil {

inline constexpr double kHfO2EnduranceLow = 1e5, kHfO2EnduranceHigh = 1e7;

// The per-device counts of one kind of device: "board", "virtual" or "ideal".
struct DeviceWrites {
  std::string source;
  std::vector<std::uint32_t> per_device;
};

// What a count of `source` is ("SET + RESET pulses on board cells, verify retries included",
// ...); throws std::invalid_argument for an unknown source.
std::string endurance_unit(const std::string& source);

// Histogram of per-device counts in integer bins of width ceil((max + 1) / 50) starting at 0:
// {"devices", "max", "mean", "median", "p99", "bins": [{"from", "to", "devices", "percent"}],
//  "max_vs_endurance": {"fraction_of_low": max / 1e5, "fraction_of_high": max / 1e7, ...}}.
nlohmann::json endurance_histogram(const std::vector<std::uint32_t>& writes_per_device);

// Writes dir/endurance.csv (source,bin_from,bin_to,devices,percent: one histogram per source
// with devices), dir/endurance.gp (one panel per source) and, if gnuplot runs, dir/endurance.png.
// Returns {source: histogram without its bins, plus "unit"} for summary.json. Every file is
// replaced atomically; a failed write throws std::runtime_error naming the file. A gnuplot that
// is missing or fails is a warning (endurance.png removed, never left half-written).
nlohmann::json write_endurance_report(const std::filesystem::path& dir,
                                      const std::vector<DeviceWrites>& sources);

}  // namespace metaplast::hil
