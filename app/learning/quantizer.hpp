// Quantization levels Q_0 < ... < Q_{N-1} for the stored weights W_Q (in hardware: the
// conductance levels of one memristor, possibly unequally spaced). See docs/method.md section 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace metaplast::learning {

// Nearest-level quantizer over a fixed, strictly increasing list of levels.
//
// Thresholds T_i = (Q_i + Q_{i+1}) / 2, i = 0..N-2. A value w maps to the nearest level,
// saturating at Q_0 and Q_{N-1}. A tie (w exactly on a threshold T_i) rounds to the UPPER level
// Q_{i+1}: the level index is the number of thresholds <= w.
//
// The containing interval of w is the j with Q_j <= w < Q_{j+1}, clamped to [0, N-2] (values
// below Q_0 belong to interval 0, values at or above Q_{N-1} to interval N-2). The metaplastic
// optimizer measures the distance of w to T_j, in units of the half-width h_j = (Q_{j+1}-Q_j)/2.
class Quantizer {
 public:
  // N levels equally spaced in [lo, hi] (lo and hi included). Throws std::invalid_argument if
  // N < 2, lo >= hi or a bound is not finite. N odd puts a level on (lo + hi) / 2.
  static Quantizer uniform(std::size_t count = 9, float lo = -1.0f, float hi = 1.0f);

  // An explicit list (e.g. from a device calibration). Throws std::invalid_argument naming the
  // offending entry unless there are >= 2 levels, all finite, strictly increasing.
  explicit Quantizer(std::vector<float> levels);

  std::size_t size() const { return levels_.size(); }
  std::span<const float> levels() const { return levels_; }
  std::span<const float> thresholds() const { return thresholds_; }
  float level(std::size_t i) const { return levels_[i]; }
  float threshold(std::size_t j) const { return thresholds_[j]; }
  // Half-width h_j = (Q_{j+1} - Q_j) / 2 of interval j, and its inverse.
  float half_width(std::size_t j) const { return half_widths_[j]; }
  float inverse_half_width(std::size_t j) const { return inverse_half_widths_[j]; }

  // Index in [0, N-1] of the nearest level (ties upwards). w must not be NaN.
  std::size_t level_index(float w) const;
  // The nearest level's value, Q[level_index(w)].
  float quantize(float w) const { return levels_[level_index(w)]; }
  // Containing interval j in [0, N-2] (see the class comment).
  std::size_t interval_index(float w) const;

  // Vectorised forms: out[k] = quantize(w[k]) / level_index(w[k]). Sizes must match
  // (std::invalid_argument otherwise). `out` may alias `w` for quantize().
  void quantize(std::span<const float> w, std::span<float> out) const;
  void level_indices(std::span<const float> w, std::span<std::uint16_t> out) const;

  // For the fused optimizer: for every w[k], the threshold T_j and 1/h_j of its containing
  // interval. Sizes must match.
  void interval_centres(std::span<const float> w, std::span<float> threshold_out,
                        std::span<float> inverse_half_width_out) const;

 private:
  // Few levels: branch-free select chains (vectorise); many levels: binary search.
  static constexpr std::size_t kLinearScanMaxLevels = 32;
  // Up to 16 (nearly) uniform levels, on a machine with AVX-512: the interval is guessed from
  // (w - Q_0) / spacing and corrected by one comparison on each side, the values looked up in
  // 16-entry tables (the same results as the select chains, bit for bit, in one pass).
  static constexpr std::size_t kTableLevels = 16;
  bool use_tables() const { return table_path_; }
  void quantize_tables(const float* w, float* out, std::size_t n) const;
  void interval_centres_tables(const float* w, float* threshold_out, float* inverse_half_out,
                               std::size_t n) const;

  std::vector<float> levels_;
  std::vector<float> thresholds_;
  std::vector<float> half_widths_;
  std::vector<float> inverse_half_widths_;
  bool table_path_ = false;
  float guess_scale_ = 0.0f;  // (N - 1) / (Q_{N-1} - Q_0)
  // Padded to 16 entries for the table path.
  std::vector<float> level_table_, threshold_table_, inverse_half_table_;
};

}  // namespace metaplast::learning
