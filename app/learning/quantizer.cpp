#include "app/learning/quantizer.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

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
}

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
