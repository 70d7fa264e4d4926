#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "devices/random.hpp"

using namespace metaplast::devices;

namespace {

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

std::vector<double> draws(NormalMethod method, std::uint64_t seed, std::size_t n) {
  RandomStream rng(seed, method);
  std::vector<double> z(n);
  for (double& v : z) v = rng.normal();
  return z;
}

}  // namespace

TEST_CASE("ziggurat table: 256 layers of equal area from R to the top", "[random]") {
  const ZigguratTable& t = ziggurat_table();
  // Marsaglia and Tsang's R for 256 layers (3.6541528853610088), to double precision.
  CHECK(t.r == Approx(3.6541528853610088).epsilon(1e-15));
  const double v = t.x[0] * std::exp(-0.5 * t.r * t.r);
  CHECK(v == Approx(t.r * std::exp(-0.5 * t.r * t.r) +
                    std::sqrt(std::acos(-1.0) / 2) * std::erfc(t.r / std::sqrt(2.0)))
                 .epsilon(1e-15));
  for (int i = 1; i < ZigguratTable::kLayers; ++i) {
    INFO("layer " << i);
    CHECK(t.x[i] > t.x[i + 1]);
    CHECK(t.x[i] * (t.f[i + 1] - t.f[i]) == Approx(v).epsilon(1e-11));
  }
  CHECK(t.x[ZigguratTable::kLayers] == 0.0);
  CHECK(t.f[ZigguratTable::kLayers] == 1.0);
}

TEST_CASE("ziggurat normals: moments, KS distance and tails of the standard normal", "[random]") {
  constexpr std::size_t n = 4'000'000;
  std::vector<double> z = draws(NormalMethod::ziggurat, 12345, n);
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  std::size_t beyond_r = 0, beyond_3 = 0, beyond_4 = 0;
  for (double x : z) {
    m1 += x;
    m2 += x * x;
    m3 += x * x * x;
    m4 += x * x * x * x;
    beyond_r += std::abs(x) > ziggurat_table().r;
    beyond_3 += std::abs(x) > 3.0;
    beyond_4 += std::abs(x) > 4.0;
  }
  const double count = static_cast<double>(n);
  // Each within 5 standard errors of the normal's value.
  CHECK(std::abs(m1 / count) < 5 * std::sqrt(1 / count));
  CHECK(std::abs(m2 / count - 1) < 5 * std::sqrt(2 / count));
  CHECK(std::abs(m3 / count) < 5 * std::sqrt(15 / count));
  CHECK(std::abs(m4 / count - 3) < 5 * std::sqrt(96 / count));
  // The tail beyond R (layer 0's second part) and the wedges' region: frequencies as expected.
  const auto within = [&](std::size_t seen, double x) {
    const double expected = count * std::erfc(x / std::sqrt(2.0));
    INFO("|z| > " << x << ": " << seen << " draws, expected " << expected);
    CHECK(std::abs(static_cast<double>(seen) - expected) < 5 * std::sqrt(expected));
  };
  within(beyond_3, 3.0);
  within(beyond_r, ziggurat_table().r);
  within(beyond_4, 4.0);

  // Kolmogorov-Smirnov distance to the normal CDF on the first million (p = 0.001: 1.95 / sqrt n).
  std::vector<double> sample(z.begin(), z.begin() + 1'000'000);
  std::sort(sample.begin(), sample.end());
  double d = 0;
  const double m = static_cast<double>(sample.size());
  for (std::size_t i = 0; i < sample.size(); ++i) {
    const double f = normal_cdf(sample[i]);
    d = std::max({d, f - static_cast<double>(i) / m, static_cast<double>(i + 1) / m - f});
  }
  CHECK(d < 1.95 / std::sqrt(m));

  // Chi-square over 512 equiprobable bins (finer than the layers: a layer of the wrong area or a
  // wrong wedge shows here): 511 degrees of freedom, mean 511, sd 32; 5 sd.
  constexpr int bins = 512;
  std::vector<double> counts(bins, 0.0);
  for (double x : z) {
    const int b = std::min(bins - 1, static_cast<int>(normal_cdf(x) * bins));
    counts[static_cast<std::size_t>(b)] += 1;
  }
  double chi2 = 0;
  const double expected = count / bins;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  CHECK(chi2 < 511 + 5 * 32);
}

TEST_CASE("normal draws: a seed and a method give the same numbers; the default is Box-Muller",
          "[random]") {
  CHECK(draws(NormalMethod::ziggurat, 7, 1000) == draws(NormalMethod::ziggurat, 7, 1000));
  CHECK(draws(NormalMethod::ziggurat, 7, 1000) != draws(NormalMethod::ziggurat, 8, 1000));
  // The state alone determines the future (nothing kept back between draws).
  RandomStream a(3, NormalMethod::ziggurat);
  for (int i = 0; i < 17; ++i) a.normal();
  RandomStream b(0, NormalMethod::ziggurat);
  b.set_state(a.state());
  for (int i = 0; i < 100; ++i) CHECK(a.normal() == b.normal());

  // Box-Muller stays the default and its draws are the formula of two uniforms (the simulated
  // board's seeded numbers do not change).
  RandomStream by_default(11), uniforms(11);
  CHECK(by_default.normals() == NormalMethod::box_muller);
  for (int i = 0; i < 100; ++i) {
    const double u1 = uniforms.uniform_open_zero();
    const double u2 = uniforms.uniform();
    CHECK(by_default.normal() == std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
}
