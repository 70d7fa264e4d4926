// The simulator's random stream: xoshiro256** with distributions written out here (not the
// std:: ones, whose algorithms differ between standard libraries and which cache values), so a
// seed gives the same numbers on every platform and the state is four integers to save.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace metaplast::devices {

// How RandomStream::normal draws; both give exactly the standard normal distribution (to the
// resolution of 53-bit uniforms) and keep nothing back between calls.
//   box_muller  two uniforms, a logarithm, a cosine and a square root per draw: the simulated
//               board's chip (its seeded figures and state files predate the ziggurat).
//   ziggurat    Marsaglia and Tsang's ziggurat with 256 layers (one 64-bit draw, a table look-up
//               and a multiplication in 99 % of draws; a wedge or the tail beyond 3.65 takes an
//               exponential or logarithms): about ten times faster; the virtual store's millions of
//               devices per step.
enum class NormalMethod : std::uint8_t { box_muller, ziggurat };

// The ziggurat's 256 layers of equal area V under f(x) = exp(-x^2 / 2): layer i >= 1 is the
// rectangle [0, x[i]] x [f[i], f[i + 1]], x[1] = R > x[2] > ... > x[256] = 0 (f[256] = 1); layer 0
// is [0, R] x [0, f(R)] plus the tail beyond R, x[0] = V / f(R) its equivalent width. R is solved
// for at first use so that the top layer has the area of the others to double precision.
struct ZigguratTable {
  static constexpr int kLayers = 256;
  std::array<double, kLayers + 1> x{};
  std::array<double, kLayers + 1> f{};
  double r = 0.0;
};

namespace detail {

inline double ziggurat_density(double x) { return std::exp(-0.5 * x * x); }

// Lays out the layers from R; returns the top layer's area minus V (negative, or -1 when the
// layers reach the top too early: R too small).
inline double ziggurat_layout(double r, ZigguratTable& t) {
  constexpr int n = ZigguratTable::kLayers;
  const double v =
      r * ziggurat_density(r) + std::sqrt(std::acos(-1.0) / 2) * std::erfc(r / std::sqrt(2.0));
  t.r = r;
  t.x[0] = v / ziggurat_density(r);
  t.x[1] = r;
  for (int i = 1; i < n - 1; ++i) {
    const double next_f = v / t.x[i] + ziggurat_density(t.x[i]);
    if (next_f >= 1.0) return -1.0;
    t.x[i + 1] = std::sqrt(-2.0 * std::log(next_f));
  }
  t.x[n] = 0.0;
  for (int i = 1; i <= n; ++i) t.f[i] = ziggurat_density(t.x[i]);
  return t.x[n - 1] * (1.0 - t.f[n - 1]) - v;
}

inline ZigguratTable make_ziggurat_table() {
  ZigguratTable t;
  double lo = 3.0, hi = 4.5;  // R is about 3.654 for 256 layers
  for (int iteration = 0; iteration < 200 && lo < hi; ++iteration) {
    const double mid = 0.5 * (lo + hi);
    if (mid == lo || mid == hi) break;
    (ziggurat_layout(mid, t) < 0.0 ? lo : hi) = mid;
  }
  ziggurat_layout(hi, t);
  return t;
}

}  // namespace detail

inline const ZigguratTable& ziggurat_table() {
  static const ZigguratTable table = detail::make_ziggurat_table();
  return table;
}

class RandomStream {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit RandomStream(std::uint64_t seed = 0, NormalMethod normals = NormalMethod::box_muller)
      : normals_(normals) {
    reseed(seed);
  }

  void reseed(std::uint64_t seed) {
    // splitmix64 expands the seed (recommended seeding for xoshiro).
    for (auto& word : state_) {
      seed += kGolden;
      word = mix64(seed);
    }
  }

  // splitmix64's finalizer: a bijective mix of 64 bits (also for deriving keys and seeds).
  static constexpr std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // splitmix64's increment (2^64 / golden ratio).
  static constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1), 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1].
  double uniform_open_zero() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }

  // Standard normal by the stream's NormalMethod; keeps nothing back (so the state alone
  // determines the future).
  double normal() {
    return normals_ == NormalMethod::ziggurat ? normal_ziggurat() : normal_box_muller();
  }
  // Box-Muller: two uniforms.
  double normal_box_muller() {
    const double u1 = uniform_open_zero();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // The ziggurat (ZigguratTable): one 64-bit draw gives the layer (bits 0-7), the sign (bit 8) and
  // a 53-bit uniform (bits 11-63), independent of one another.
  double normal_ziggurat() {
    const ZigguratTable& t = ziggurat_table();
    for (;;) {
      const std::uint64_t bits = next();
      const int i = static_cast<int>(bits & 0xFF);
      // x >= 0 takes bit 8 as its sign bit (without a branch: it is a coin toss).
      const auto signed_value = [bits](double x) {
        return std::bit_cast<double>(std::bit_cast<std::uint64_t>(x) | (bits & 0x100) << 55);
      };
      const double x = static_cast<double>(bits >> 11) * 0x1.0p-53 * t.x[i];
      if (x < t.x[i + 1]) return signed_value(x);  // inside the layer's part under the curve
      if (i == 0) {
        // The tail beyond R (Marsaglia 1964): R + a with a exponential, accepted with
        // probability exp(-a^2 / 2).
        double a, b;
        do {
          a = -std::log(uniform_open_zero()) / t.r;
          b = -std::log(uniform_open_zero());
        } while (b + b < a * a);
        return signed_value(t.r + a);
      }
      // The wedge between the curve and the layer's outer edge.
      if (t.f[i] + uniform() * (t.f[i + 1] - t.f[i]) < detail::ziggurat_density(x)) {
        return signed_value(x);
      }
    }
  }
  double normal(double mean, double sigma) { return mean + sigma * normal(); }
  // Log-normal with the given median and sigma of ln.
  double lognormal(double median, double sigma_ln) {
    return median * std::exp(sigma_ln * normal());
  }
  bool bernoulli(double p) { return uniform() < p; }

  const State& state() const { return state_; }
  void set_state(const State& state) { state_ = state; }
  NormalMethod normals() const { return normals_; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  State state_{};
  NormalMethod normals_ = NormalMethod::box_muller;
};

}  // namespace metaplast::devices
