#include "app/learning/metaplastic_optimizer.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "app/util/thread_pool.hpp"
#include "common/enum_names.hpp"

// GCC 12 reports a false -Wmaybe-uninitialized inside its own AVX-512 intrinsics
// (_mm512_undefined_ps) wherever Eigen's vectorised sqrt/tanh get inlined in this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace metaplast::learning {

namespace {

// Weights are processed in blocks aligned to absolute indices, so the arithmetic (including which
// elements take Eigen's packet or scalar tanh) never depends on the thread count.
constexpr std::size_t kBlock = 512;

struct StepParams {
  float beta1, beta2, epsilon, weight_decay, step_size, mstar;
};

// Adam moments for one block; writes the raw (unattenuated) update direction m / (sqrt(v) + eps).
// Eigen expressions: they vectorise the square root, which GCC keeps scalar for errno.
inline void adam_moments_block(const StepParams& p, const float* hidden, const float* grad,
                               float* m, float* v, float* direction, std::size_t n) {
  using Array = Eigen::Map<Eigen::ArrayXf>;
  using ConstArray = Eigen::Map<const Eigen::ArrayXf>;
  const auto size = static_cast<Eigen::Index>(n);
  const float beta1 = p.beta1, beta2 = p.beta2, epsilon = p.epsilon, decay = p.weight_decay;
  Array first(m, size), second(v, size);
  const auto g = ConstArray(grad, size) + decay * ConstArray(hidden, size);
  first = beta1 * first + (1.0f - beta1) * g;
  second = beta2 * second + (1.0f - beta2) * g.square();
  Array(direction, size) = first / (second.sqrt() + epsilon);
}

// a * b > 0 without the product (which could underflow to 0 for tiny values); branch-free.
inline bool same_sign(float a, float b) {
  return ((a > 0.0f) & (b > 0.0f)) | ((a < 0.0f) & (b < 0.0f));
}

// out[k] = tanh(x[k]) over an aligned block.
inline void tanh_block(const float* x, float* out, std::size_t n) {
  Eigen::Map<Eigen::ArrayXf, Eigen::Aligned64>(out, static_cast<Eigen::Index>(n)) =
      Eigen::Map<const Eigen::ArrayXf, Eigen::Aligned64>(x, static_cast<Eigen::Index>(n)).tanh();
}

// The whole update of one block of a quantized tensor.
void quantized_block(const StepParams& p, MetaplasticRule rule, const Quantizer& quantizer,
                     float* __restrict h, float* __restrict q, const float* __restrict g,
                     float* __restrict m, float* __restrict v, std::size_t n) {
  alignas(64) float direction[kBlock];
  adam_moments_block(p, h, g, m, v, direction, n);
  const float mstar = p.mstar;
  if (mstar > 0.0f) {
    alignas(64) float centre[kBlock];
    alignas(64) float inverse_half[kBlock];
    alignas(64) float x[kBlock];
    alignas(64) float consolidating[kBlock];  // 1 or 0
    alignas(64) float t[kBlock];
    switch (rule) {
      case MetaplasticRule::interval:
      case MetaplasticRule::interval_whole: {
        quantizer.interval_centres({h, n}, {centre, n}, {inverse_half, n});
        const float scale = rule == MetaplasticRule::interval ? mstar : 0.5f * mstar;
        for (std::size_t k = 0; k < n; ++k) {
          const float offset = h[k] - centre[k];
          x[k] = scale * std::abs(offset) * inverse_half[k];
          consolidating[k] = same_sign(offset, m[k]) ? 1.0f : 0.0f;
        }
        break;
      }
      case MetaplasticRule::global:
        for (std::size_t k = 0; k < n; ++k) {
          x[k] = mstar * std::abs(h[k]);
          consolidating[k] = same_sign(h[k], m[k]) ? 1.0f : 0.0f;
        }
        break;
    }
    tanh_block(x, t, n);
    const float step_size = p.step_size;
    for (std::size_t k = 0; k < n; ++k) {
      // Consolidating: 1 - tanh^2; otherwise exactly 1.
      const float factor = 1.0f - consolidating[k] * t[k] * t[k];
      h[k] -= step_size * (factor * direction[k]);
    }
  } else {
    const float step_size = p.step_size;
    for (std::size_t k = 0; k < n; ++k) h[k] -= step_size * direction[k];
  }
  quantizer.quantize({h, n}, {q, n});
}

void check_size(std::size_t expected, std::size_t got, const char* who, const char* what) {
  if (expected != got) {
    throw std::invalid_argument(std::string("MetaplasticAdam::") + who + ": " + what + " has " +
                                std::to_string(got) + " elements, the slot has " +
                                std::to_string(expected));
  }
}

constexpr auto kRuleNames = common::enum_table<MetaplasticRule>({
    {MetaplasticRule::interval, "interval"},
    {MetaplasticRule::interval_whole, "interval-whole"},
    {MetaplasticRule::global, "global"},
});

}  // namespace

std::string_view to_string(MetaplasticRule rule) {
  return common::enum_name(kRuleNames, rule, "unknown");
}

MetaplasticRule parse_rule(std::string_view name) {
  return common::parse_enum(kRuleNames, name, "--rule: unknown metaplastic rule");
}

float metaplastic_factor(const Quantizer& quantizer, MetaplasticRule rule, float mstar,
                         float hidden, float first_moment) {
  float x = 0.0f;
  bool consolidating = false;
  switch (rule) {
    case MetaplasticRule::interval:
    case MetaplasticRule::interval_whole: {
      const std::size_t j = quantizer.interval_index(hidden);
      const float offset = hidden - quantizer.threshold(j);
      const float scale = rule == MetaplasticRule::interval ? 1.0f : 0.5f;
      x = mstar * std::abs(offset) * scale * quantizer.inverse_half_width(j);
      consolidating = same_sign(offset, first_moment);
      break;
    }
    case MetaplasticRule::global:
      x = mstar * std::abs(hidden);
      consolidating = same_sign(hidden, first_moment);
      break;
  }
  if (!consolidating) return 1.0f;
  const float t = std::tanh(x);
  return 1.0f - t * t;
}

MetaplasticAdam::MetaplasticAdam(OptimizerConfig config, Quantizer quantizer, int threads)
    : config_(config), quantizer_(std::move(quantizer)) {
  if (!(config_.learning_rate > 0.0f) || !std::isfinite(config_.learning_rate)) {
    throw std::invalid_argument("optimizer: learning rate must be a positive number, got " +
                                std::to_string(config_.learning_rate));
  }
  if (!(config_.mstar >= 0.0f) || !std::isfinite(config_.mstar)) {
    throw std::invalid_argument("optimizer: m* must be finite and >= 0, got " +
                                std::to_string(config_.mstar));
  }
  set_threads(threads);
}

void MetaplasticAdam::set_learning_rate(float learning_rate) {
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate)) {
    throw std::invalid_argument("optimizer: learning rate must be a positive number, got " +
                                std::to_string(learning_rate));
  }
  config_.learning_rate = learning_rate;
}

void MetaplasticAdam::set_threads(int threads) {
  if (threads < 1) {
    throw std::invalid_argument("optimizer: thread count must be >= 1, got " +
                                std::to_string(threads));
  }
  threads_ = threads;
  util::set_compute_threads(threads);
}

std::size_t MetaplasticAdam::add_quantized_tensor(std::size_t size) {
  moments_.push_back({std::vector<float>(size, 0.0f), std::vector<float>(size, 0.0f)});
  quantized_slot_.push_back(true);
  return moments_.size() - 1;
}

std::size_t MetaplasticAdam::add_plain_tensor(std::size_t size) {
  moments_.push_back({std::vector<float>(size, 0.0f), std::vector<float>(size, 0.0f)});
  quantized_slot_.push_back(false);
  return moments_.size() - 1;
}

void MetaplasticAdam::begin_step() {
  ++step_count_;
  // In double, as PyTorch computes the bias corrections in Python floats.
  const double t = static_cast<double>(step_count_);
  const double correction1 = 1.0 - std::pow(static_cast<double>(config_.beta1), t);
  const double correction2 = 1.0 - std::pow(static_cast<double>(config_.beta2), t);
  step_size_ = static_cast<float>(static_cast<double>(config_.learning_rate) *
                                  std::sqrt(correction2) / correction1);
}

void MetaplasticAdam::reset() {
  for (auto& m : moments_) {
    std::fill(m.first.begin(), m.first.end(), 0.0f);
    std::fill(m.second.begin(), m.second.end(), 0.0f);
  }
  step_count_ = 0;
  step_size_ = 0.0f;
}

void MetaplasticAdam::restore(std::int64_t step_count, std::vector<AdamMoments> moments) {
  if (moments.size() != moments_.size()) {
    throw std::invalid_argument("optimizer: saved state has " + std::to_string(moments.size()) +
                                " tensors, the network has " + std::to_string(moments_.size()));
  }
  for (std::size_t s = 0; s < moments.size(); ++s) {
    if (moments[s].first.size() != moments_[s].first.size() ||
        moments[s].second.size() != moments_[s].second.size()) {
      throw std::invalid_argument("optimizer: saved state of tensor " + std::to_string(s) +
                                  " has the wrong size");
    }
  }
  moments_ = std::move(moments);
  step_count_ = step_count;
  if (step_count_ > 0) {
    --step_count_;
    begin_step();  // recomputes step_size_ for step_count
  }
}

AdamMoments& MetaplasticAdam::slot_moments(std::size_t slot, std::size_t size, const char* who) {
  if (slot >= moments_.size()) {
    throw std::invalid_argument(std::string("MetaplasticAdam::") + who + ": no slot " +
                                std::to_string(slot));
  }
  if (step_count_ == 0) {
    throw std::logic_error(std::string("MetaplasticAdam::") + who +
                           ": call begin_step() before the updates of a step");
  }
  check_size(moments_[slot].first.size(), size, who, "tensor");
  return moments_[slot];
}

void MetaplasticAdam::update_quantized(std::size_t slot, std::span<float> hidden,
                                       std::span<float> quantized, std::span<const float> grad) {
  AdamMoments& state = slot_moments(slot, hidden.size(), "update_quantized");
  if (!quantized_slot_[slot]) {
    throw std::invalid_argument("MetaplasticAdam::update_quantized: slot " + std::to_string(slot) +
                                " was registered as a plain tensor");
  }
  check_size(hidden.size(), quantized.size(), "update_quantized", "quantized");
  check_size(hidden.size(), grad.size(), "update_quantized", "grad");

  const StepParams p{config_.beta1,        config_.beta2, config_.epsilon,
                     config_.weight_decay, step_size_,    config_.mstar};
  const MetaplasticRule rule = config_.rule;
  const Quantizer& quantizer = quantizer_;
  const std::size_t size = hidden.size();
  float* h = hidden.data();
  float* q = quantized.data();
  const float* g = grad.data();
  float* m = state.first.data();
  float* v = state.second.data();
  // Small tensors are not worth a thread.
  const int threads = size >= 64 * kBlock ? threads_ : 1;
  util::parallel_ranges((size + kBlock - 1) / kBlock, threads,
                        [&](std::size_t first, std::size_t last) {
                          for (std::size_t b = first; b < last; ++b) {
                            const std::size_t begin = b * kBlock;
                            const std::size_t n = std::min(kBlock, size - begin);
                            quantized_block(p, rule, quantizer, h + begin, q + begin, g + begin,
                                            m + begin, v + begin, n);
                          }
                        });
}

void MetaplasticAdam::update_plain(std::size_t slot, std::span<float> param,
                                   std::span<const float> grad) {
  AdamMoments& state = slot_moments(slot, param.size(), "update_plain");
  check_size(param.size(), grad.size(), "update_plain", "grad");
  const StepParams p{config_.beta1,        config_.beta2, config_.epsilon,
                     config_.weight_decay, step_size_,    config_.mstar};
  const std::size_t size = param.size();
  for (std::size_t begin = 0; begin < size; begin += kBlock) {
    alignas(64) float direction[kBlock];
    const std::size_t n = std::min(kBlock, size - begin);
    adam_moments_block(p, param.data() + begin, grad.data() + begin, state.first.data() + begin,
                       state.second.data() + begin, direction, n);
    for (std::size_t k = 0; k < n; ++k) param[begin + k] -= p.step_size * direction[k];
  }
}

}  // namespace metaplast::learning
