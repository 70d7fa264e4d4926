// The simulator's random stream: xoshiro256** with distributions written out here (not the
// std:: ones, whose algorithms differ between standard libraries and which cache values), so a
// seed gives the same numbers on every platform and the state is four integers to save.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace metaplast::devices {

class RandomStream {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit RandomStream(std::uint64_t seed = 0) { reseed(seed); }

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

  // Standard normal by Box-Muller; uses two uniforms, keeps nothing back (so the state alone
  // determines the future).
  double normal() {
    const double u1 = uniform_open_zero();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double normal(double mean, double sigma) { return mean + sigma * normal(); }
  // Log-normal with the given median and sigma of ln.
  double lognormal(double median, double sigma_ln) {
    return median * std::exp(sigma_ln * normal());
  }
  bool bernoulli(double p) { return uniform() < p; }

  const State& state() const { return state_; }
  void set_state(const State& state) { state_ = state; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  State state_{};
};

}  // namespace metaplast::devices
