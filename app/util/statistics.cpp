#include "app/util/statistics.hpp"

#include <algorithm>
#include <cmath>

namespace metaplast::util {

namespace {

double mean_of(std::span<const double> values) {
  double sum = 0;
  for (double x : values) sum += x;
  return sum / static_cast<double>(values.size());
}

double squared_deviations(std::span<const double> values, double mean) {
  double ss = 0;
  for (double x : values) ss += (x - mean) * (x - mean);
  return ss;
}

}  // namespace

Summary summarize(std::span<const double> values) {
  Summary s;
  s.n = values.size();
  if (values.empty()) return s;
  s.mean = mean_of(values);
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  s.min = *lo;
  s.max = *hi;
  if (values.size() > 1) {
    s.std = std::sqrt(squared_deviations(values, s.mean) / static_cast<double>(values.size() - 1));
  }
  return s;
}

double sample_variance(std::span<const double> values) {
  if (values.size() < 2) return 0.0;
  return squared_deviations(values, mean_of(values)) / static_cast<double>(values.size() - 1);
}

}  // namespace metaplast::util
