// The one summary of a set of numbers the product reports (repeat statistics, campaign
// evaluations, report plots, calibration fits): count, mean, sample standard deviation (n - 1;
// 0 for fewer than two values), minimum and maximum.
#pragma once

#include <cstddef>
#include <span>

namespace metaplast::util {

struct Summary {
  std::size_t n = 0;
  double mean = 0;
  double std = 0;  // sample standard deviation: sqrt(sum (x - mean)^2 / (n - 1))
  double min = 0;
  double max = 0;
};

// All zero for no values.
Summary summarize(std::span<const double> values);

// sum (x - mean)^2 / (n - 1); 0 for fewer than two values.
double sample_variance(std::span<const double> values);

}  // namespace metaplast::util
