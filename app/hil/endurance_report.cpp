#include "app/hil/endurance_report.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "app/util/csv.hpp"
#include "app/util/gnuplot.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::hil {

std::string endurance_unit(const std::string& source) {
  if (source == "board") return "SET + RESET pulses on board cells, verify retries included";
  if (source == "virtual") {
    return "simulated SET + RESET pulses on virtual devices, verify retries included";
  }
  if (source == "ideal") return "level changes of ideal weights (no device)";
  throw std::invalid_argument("endurance report: unknown device kind \"" + source +
                              "\" (expected board, virtual or ideal)");
}

nlohmann::json endurance_histogram(const std::vector<std::uint32_t>& writes_per_device) {
  nlohmann::json j;
  const std::size_t n = writes_per_device.size();
  j["devices"] = n;
  if (n == 0) {
    j["max"] = 0;
    j["bins"] = nlohmann::json::array();
    return j;
  }
  std::vector<std::uint32_t> sorted = writes_per_device;
  std::sort(sorted.begin(), sorted.end());
  const std::uint32_t max = sorted.back();
  const double sum = std::accumulate(sorted.begin(), sorted.end(), 0.0);
  j["max"] = max;
  j["mean"] = sum / static_cast<double>(n);
  j["median"] = sorted[n / 2];
  j["p99"] = sorted[std::min(n - 1, n * 99 / 100)];
  const std::uint64_t width = std::max<std::uint64_t>(1, (std::uint64_t{max} + 1 + 49) / 50);
  std::vector<std::size_t> counts((max + width) / width, 0);
  for (std::uint32_t w : sorted) ++counts[w / width];
  nlohmann::json bins = nlohmann::json::array();
  for (std::size_t b = 0; b < counts.size(); ++b) {
    bins.push_back({{"from", b * width},
                    {"to", (b + 1) * width - 1},
                    {"devices", counts[b]},
                    {"percent", 100.0 * static_cast<double>(counts[b]) / static_cast<double>(n)}});
  }
  j["bins"] = bins;
  j["max_vs_endurance"] = {{"endurance_low", kHfO2EnduranceLow},
                           {"endurance_high", kHfO2EnduranceHigh},
                           {"fraction_of_low", max / kHfO2EnduranceLow},
                           {"fraction_of_high", max / kHfO2EnduranceHigh}};
  return j;
}

namespace {

// One panel per source, stacked; data from endurance.csv in the script's own folder.
std::string endurance_script(const std::vector<std::pair<std::string, nlohmann::json>>& panels) {
  std::ostringstream gp;
  gp << "# Draw with `gnuplot endurance.gp` in this folder.\n"
        "set terminal pngcairo size 800,"
     << 120 + 330 * panels.size()
     << " enhanced font 'DejaVu Sans,11'\n"
        "set output 'endurance.png'\n"
        "set datafile separator ','\n"
        "set style fill solid 0.6\n"
        "set boxwidth 0.9 relative\n"
        "set ylabel 'devices (%)'\n"
        "set multiplot layout "
     << panels.size() << ",1 title "
     << util::gnuplot_quote("Programming count per device after training (HfO2 endurance 1e5-1e7)")
     << "\n";
  for (const auto& [source, h] : panels) {
    const std::string unit = endurance_unit(source);
    gp << "set title "
       << util::gnuplot_quote_text(source + ": " +
                                   std::to_string(h["devices"].get<std::uint64_t>()) +
                                   " devices, max " + std::to_string(h["max"].get<std::uint64_t>()))
       << "\n"
       << "set xlabel " << util::gnuplot_quote_text(unit) << "\n"
       << "plot 'endurance.csv' using (strcol(1) eq " << util::gnuplot_quote(source)
       << " ? ($2+$3)/2 : NaN):5 with boxes notitle\n";
  }
  gp << "unset multiplot\n";
  return gp.str();
}

}  // namespace

nlohmann::json write_endurance_report(const std::filesystem::path& dir,
                                      const std::vector<DeviceWrites>& sources) {
  nlohmann::json summary = nlohmann::json::object();
  std::vector<std::pair<std::string, nlohmann::json>> panels;
  util::CsvWriter csv({"source", "bin_from", "bin_to", "devices", "percent"});
  for (const auto& s : sources) {
    nlohmann::json h = endurance_histogram(s.per_device);
    if (s.per_device.empty()) continue;
    for (const auto& b : h["bins"]) {
      csv.text(s.source).integer(b["from"].get<std::uint64_t>());
      csv.integer(b["to"].get<std::uint64_t>()).integer(b["devices"].get<std::uint64_t>());
      csv.number(b["percent"].get<double>()).end_row();
    }
    h.erase("bins");
    h["unit"] = endurance_unit(s.source);
    summary[s.source] = h;
    panels.emplace_back(s.source, h);
  }
  common::write_file_atomically(dir / "endurance.csv", csv.str());
  std::filesystem::remove(dir / "endurance.png");
  if (panels.empty()) {
    std::filesystem::remove(dir / "endurance.gp");
    return summary;
  }
  common::write_file_atomically(dir / "endurance.gp", endurance_script(panels));
  std::string error = util::run_gnuplot(dir / "endurance.gp");
  std::error_code ec;
  if (error.empty() && std::filesystem::file_size(dir / "endurance.png", ec) == 0) {
    error = "gnuplot wrote no " + (dir / "endurance.png").string() + " (disk full?)";
  }
  if (!error.empty()) {
    std::filesystem::remove(dir / "endurance.png", ec);  // never a half-drawn picture
    spdlog::warn("{}; {} has the histogram", error, (dir / "endurance.csv").string());
  }
  return summary;
}

}  // namespace metaplast::hil
