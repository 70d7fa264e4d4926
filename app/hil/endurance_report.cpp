#include "app/hil/endurance_report.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <numeric>

namespace metaplast::hil {

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
  const std::uint32_t width = std::max<std::uint32_t>(1, (max + 1 + 49) / 50);
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

nlohmann::json write_endurance_report(const std::filesystem::path& dir,
                                      const std::vector<std::uint32_t>& writes_per_device) {
  nlohmann::json j = endurance_histogram(writes_per_device);
  {
    std::ofstream csv(dir / "endurance.csv", std::ios::trunc);
    csv << "bin_from,bin_to,devices,percent\n";
    for (const auto& b : j["bins"]) {
      csv << b["from"].get<std::uint64_t>() << ',' << b["to"].get<std::uint64_t>() << ','
          << b["devices"].get<std::uint64_t>() << ',' << b["percent"].get<double>() << '\n';
    }
  }
  {
    std::ofstream gp(dir / "endurance.gp", std::ios::trunc);
    gp << "set terminal png size 800,500\n"
          "set output 'endurance.png'\n"
          "set datafile separator ','\n"
          "set title 'Programming operations per device after training (max "
       << j["max"].get<std::uint64_t>()
       << "; HfO2 endurance 1e5-1e7)'\n"
          "set xlabel 'programming operations (SET + RESET pulses, verify retries included)'\n"
          "set ylabel 'devices (%)'\n"
          "set style fill solid 0.6\n"
          "set boxwidth 0.9 relative\n"
          "plot 'endurance.csv' skip 1 using (($1+$2)/2):4 with boxes notitle\n";
  }
  const std::string command = "cd '" + dir.string() + "' && gnuplot endurance.gp > /dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    spdlog::warn("gnuplot did not run; {}/endurance.csv has the histogram", dir.string());
  }
  j.erase("bins");
  return j;
}

}  // namespace metaplast::hil
