#include "app/learning/quantizer.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12 reports a false -Wmaybe-uninitialized inside its own AVX-512 intrinsics
// (_mm512_undefined_*), as in metaplastic_optimizer.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace metaplast::learning {

namespace {

void require_same_size(std::size_t a, std::size_t b, const char* what) {
  if (a != b) {
    throw std::invalid_argument(std::string("Quantizer::") + what + ": input has " +
                                std::to_string(a) + " values but output has " + std::to_string(b));
  }
}

}  // namespace

Quantizer Quantizer::uniform(std::size_t count, float lo, float hi) {
  if (count < 2) {
    throw std::invalid_argument("quantizer: need at least 2 levels, got " + std::to_string(count));
  }
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi)) {
    throw std::invalid_argument("quantizer: uniform range must be finite with lo < hi, got [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  std::vector<float> levels(count);
  for (std::size_t i = 0; i < count; ++i) {
    // In double so that symmetric ranges give exact, symmetric levels (0 for odd counts).
    levels[i] = static_cast<float>(static_cast<double>(lo) + (static_cast<double>(hi) - lo) *
                                                                 static_cast<double>(i) /
                                                                 static_cast<double>(count - 1));
  }
  levels.back() = hi;
  return Quantizer(std::move(levels));
}

Quantizer::Quantizer(std::vector<float> levels) : levels_(std::move(levels)) {
  if (levels_.size() < 2) {
    throw std::invalid_argument("quantizer: need at least 2 levels, got " +
                                std::to_string(levels_.size()));
  }
  if (levels_.size() > 65535) {
    throw std::invalid_argument("quantizer: at most 65535 levels are supported, got " +
                                std::to_string(levels_.size()));
  }
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    if (!std::isfinite(levels_[i])) {
      throw std::invalid_argument("quantizer: level " + std::to_string(i) + " is not finite");
    }
    if (i > 0 && !(levels_[i - 1] < levels_[i])) {
      throw std::invalid_argument("quantizer: levels must be strictly increasing, but level " +
                                  std::to_string(i) + " (" + std::to_string(levels_[i]) +
                                  ") <= level " + std::to_string(i - 1) + " (" +
                                  std::to_string(levels_[i - 1]) + ")");
    }
  }
  const std::size_t intervals = levels_.size() - 1;
  thresholds_.resize(intervals);
  half_widths_.resize(intervals);
  inverse_half_widths_.resize(intervals);
  for (std::size_t j = 0; j < intervals; ++j) {
    thresholds_[j] = 0.5f * (levels_[j] + levels_[j + 1]);
    half_widths_[j] = 0.5f * (levels_[j + 1] - levels_[j]);
    inverse_half_widths_[j] = 1.0f / half_widths_[j];
  }
#if defined(__AVX512F__)
  // The guess (w - Q_0) * scale is then within one interval of the truth: every level lies within
  // a quarter of the mean spacing of its uniform position.
  const std::size_t n = levels_.size();
  const double spacing = (static_cast<double>(levels_.back()) - levels_.front()) / (n - 1);
  bool nearly_uniform = n <= kTableLevels;
  for (std::size_t i = 0; i < n && nearly_uniform; ++i) {
    const double uniform_position = levels_.front() + spacing * static_cast<double>(i);
    nearly_uniform = std::abs(levels_[i] - uniform_position) <= 0.25 * spacing;
  }
  if (nearly_uniform && std::isfinite(1.0 / spacing)) {
    table_path_ = true;
    guess_scale_ = static_cast<float>(1.0 / spacing);
    level_table_.assign(kTableLevels, levels_.back());
    threshold_table_.assign(kTableLevels, thresholds_.back());
    inverse_half_table_.assign(kTableLevels, inverse_half_widths_.back());
    std::copy(levels_.begin(), levels_.end(), level_table_.begin());
    std::copy(thresholds_.begin(), thresholds_.end(), threshold_table_.begin());
    std::copy(inverse_half_widths_.begin(), inverse_half_widths_.end(),
              inverse_half_table_.begin());
  }
#endif
}

#if defined(__AVX512F__)
namespace {

struct IntervalTables {
  __m512 levels, thresholds, origin, scale, top_interval;
  __m512i last_interval;
};

// The containing interval j (Q_j <= w < Q_{j+1}, clamped to [0, N-2]) of 16 values: the guess
// floor((w - Q_0) * scale), clamped in float (NaN and -inf give 0, +inf N-2), is off by at most
// one; one comparison with Q_{j+1} and one with Q_j make it exact.
inline __m512i containing_interval(const IntervalTables& t, __m512 w) {
  __m512 guess = _mm512_mul_ps(_mm512_sub_ps(w, t.origin), t.scale);
  guess = _mm512_min_ps(_mm512_max_ps(guess, _mm512_setzero_ps()), t.top_interval);
  __m512i j = _mm512_cvttps_epi32(guess);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i next = _mm512_add_epi32(j, one);
  const __mmask16 up = _mm512_cmplt_epi32_mask(j, t.last_interval) &
                       _mm512_cmp_ps_mask(w, _mm512_permutexvar_ps(next, t.levels), _CMP_GE_OQ);
  j = _mm512_mask_add_epi32(j, up, j, one);
  const __mmask16 down = _mm512_cmpgt_epi32_mask(j, _mm512_setzero_si512()) &
                         _mm512_cmp_ps_mask(w, _mm512_permutexvar_ps(j, t.levels), _CMP_LT_OQ);
  return _mm512_mask_sub_epi32(j, down, j, one);
}

IntervalTables make_tables(std::span<const float> levels, const float* level_table,
                           const float* threshold_table, float scale) {
  return {_mm512_loadu_ps(level_table),
          _mm512_loadu_ps(threshold_table),
          _mm512_set1_ps(levels.front()),
          _mm512_set1_ps(scale),
          _mm512_set1_ps(static_cast<float>(levels.size() - 2)),
          _mm512_set1_epi32(static_cast<int>(levels.size() - 2))};
}

}  // namespace

void Quantizer::quantize_tables(const float* w, float* out, std::size_t n) const {
  const IntervalTables tables =
      make_tables(levels_, level_table_.data(), threshold_table_.data(), guess_scale_);
  const __m512i one = _mm512_set1_epi32(1);
  for (std::size_t k = 0; k < n; k += 16) {
    const __mmask16 lanes = n - k >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - k)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(lanes, w + k);
    const __m512i j = containing_interval(tables, x);
    // The level index is j, plus one at or above T_j (the thresholds below T_j are below Q_j).
    const __mmask16 above =
        _mm512_cmp_ps_mask(x, _mm512_permutexvar_ps(j, tables.thresholds), _CMP_GE_OQ);
    const __m512i level = _mm512_mask_add_epi32(j, above, j, one);
    _mm512_mask_storeu_ps(out + k, lanes, _mm512_permutexvar_ps(level, tables.levels));
  }
}

void Quantizer::interval_centres_tables(const float* w, float* threshold_out,
                                        float* inverse_half_out, std::size_t n) const {
  const IntervalTables tables =
      make_tables(levels_, level_table_.data(), threshold_table_.data(), guess_scale_);
  const __m512 inverse_half = _mm512_loadu_ps(inverse_half_table_.data());
  for (std::size_t k = 0; k < n; k += 16) {
    const __mmask16 lanes = n - k >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - k)) - 1);
    const __m512i j = containing_interval(tables, _mm512_maskz_loadu_ps(lanes, w + k));
    _mm512_mask_storeu_ps(threshold_out + k, lanes, _mm512_permutexvar_ps(j, tables.thresholds));
    _mm512_mask_storeu_ps(inverse_half_out + k, lanes, _mm512_permutexvar_ps(j, inverse_half));
  }
}
#else
void Quantizer::quantize_tables(const float*, float*, std::size_t) const {}
void Quantizer::interval_centres_tables(const float*, float*, float*, std::size_t) const {}
#endif

std::size_t Quantizer::level_index(float w) const {
  // Number of thresholds <= w: ties go to the upper level.
  return static_cast<std::size_t>(std::upper_bound(thresholds_.begin(), thresholds_.end(), w) -
                                  thresholds_.begin());
}

std::size_t Quantizer::interval_index(float w) const {
  // Number of inner levels Q_1..Q_{N-2} that are <= w, which clamps to [0, N-2] by itself.
  const auto first = levels_.begin() + 1;
  const auto last = levels_.end() - 1;
  return static_cast<std::size_t>(std::upper_bound(first, last, w) - first);
}

void Quantizer::quantize(std::span<const float> w, std::span<float> out) const {
  require_same_size(w.size(), out.size(), "quantize");
  const std::size_t n = w.size();
  if (levels_.size() > kLinearScanMaxLevels) {
    for (std::size_t k = 0; k < n; ++k) out[k] = quantize(w[k]);
    return;
  }
  if (use_tables()) {
    quantize_tables(w.data(), out.data(), n);
    return;
  }
  const float* __restrict in = w.data();
  float* __restrict o = out.data();
  // Select chain: the last threshold <= w wins; vectorises over k.
  constexpr std::size_t kBlock = 256;
  float block[kBlock];
  for (std::size_t b = 0; b < n; b += kBlock) {
    const std::size_t m = std::min(kBlock, n - b);
    for (std::size_t k = 0; k < m; ++k) block[k] = levels_[0];
    for (std::size_t i = 0; i < thresholds_.size(); ++i) {
      const float t = thresholds_[i];
      const float q = levels_[i + 1];
      for (std::size_t k = 0; k < m; ++k) block[k] = in[b + k] >= t ? q : block[k];
    }
    for (std::size_t k = 0; k < m; ++k) o[b + k] = block[k];
  }
}

void Quantizer::level_indices(std::span<const float> w, std::span<std::uint16_t> out) const {
  require_same_size(w.size(), out.size(), "level_indices");
  for (std::size_t k = 0; k < w.size(); ++k) out[k] = static_cast<std::uint16_t>(level_index(w[k]));
}

void Quantizer::interval_centres(std::span<const float> w, std::span<float> threshold_out,
                                 std::span<float> inverse_half_width_out) const {
  require_same_size(w.size(), threshold_out.size(), "interval_centres");
  require_same_size(w.size(), inverse_half_width_out.size(), "interval_centres");
  const std::size_t n = w.size();
  float* __restrict t_out = threshold_out.data();
  float* __restrict ih_out = inverse_half_width_out.data();
  if (levels_.size() > kLinearScanMaxLevels) {
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t j = interval_index(w[k]);
      t_out[k] = thresholds_[j];
      ih_out[k] = inverse_half_widths_[j];
    }
    return;
  }
  if (use_tables()) {
    interval_centres_tables(w.data(), t_out, ih_out, n);
    return;
  }
  const float* __restrict in = w.data();
  for (std::size_t k = 0; k < n; ++k) {
    t_out[k] = thresholds_[0];
    ih_out[k] = inverse_half_widths_[0];
  }
  for (std::size_t i = 1; i + 1 < levels_.size(); ++i) {
    const float q = levels_[i];
    const float t = thresholds_[i];
    const float ih = inverse_half_widths_[i];
    for (std::size_t k = 0; k < n; ++k) {
      const bool above = in[k] >= q;
      t_out[k] = above ? t : t_out[k];
      ih_out[k] = above ? ih : ih_out[k];
    }
  }
}

}  // namespace metaplast::learning
