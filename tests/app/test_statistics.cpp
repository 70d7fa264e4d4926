// The one summary of a set of numbers (app/util/statistics.hpp): count, mean, sample standard
// deviation (n - 1), minimum and maximum, and the sample variance.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "app/util/statistics.hpp"

using metaplast::util::sample_variance;
using metaplast::util::summarize;

TEST_CASE("no values: all zero; one value: no spread") {
  const auto none = summarize(std::vector<double>{});
  CHECK(none.n == 0);
  CHECK(none.mean == 0);
  CHECK(none.std == 0);
  const auto one = summarize(std::vector<double>{0.97});
  CHECK(one.n == 1);
  CHECK(one.mean == 0.97);
  CHECK(one.std == 0);
  CHECK(one.min == 0.97);
  CHECK(one.max == 0.97);
  CHECK(sample_variance(std::vector<double>{5.0}) == 0);
}

TEST_CASE("mean, sample standard deviation (n - 1), min and max") {
  const std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  const auto s = summarize(v);
  CHECK(s.n == 8);
  CHECK(s.mean == 5.0);
  // Squared deviations sum to 32: population variance 4, sample variance 32 / 7.
  CHECK(s.std == Approx(std::sqrt(32.0 / 7.0)).epsilon(1e-15));
  CHECK(sample_variance(v) == Approx(32.0 / 7.0).epsilon(1e-15));
  CHECK(s.min == 2);
  CHECK(s.max == 9);
}

TEST_CASE("the order of the sums is fixed: sum, divide, then squared deviations") {
  // The repeat and campaign statistics are compared byte for byte across versions.
  const std::vector<double> v = {0.9123, 0.9071, 0.9150};
  double mean = 0;
  for (double x : v) mean += x;
  mean /= 3;
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  const auto s = summarize(v);
  CHECK(s.mean == mean);
  CHECK(s.std == std::sqrt(ss / 2));
}
