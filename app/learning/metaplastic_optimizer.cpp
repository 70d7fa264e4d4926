#include "app/learning/metaplastic_optimizer.hpp"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace metaplast::learning {

namespace {

// Weights are processed in blocks aligned to absolute indices, so the arithmetic (including which
// elements take Eigen's packet or scalar tanh) never depends on the thread count.
constexpr std::size_t kBlock = 512;

struct StepParams {
  float beta1, beta2, epsilon, weight_decay, step_size, mstar;
};

// Adam moments for one block; writes the raw (unattenuated) update direction m / (sqrt(v) + eps).
inline void adam_moments_block(const StepParams& p, const float* hidden, const float* grad,
                               float* m, float* v, float* direction, std::size_t n) {
  const float one_minus_b1 = 1.0f - p.beta1;
  const float one_minus_b2 = 1.0f - p.beta2;
  for (std::size_t k = 0; k < n; ++k) {
    const float g = grad[k] + p.weight_decay * hidden[k];
    const float mk = p.beta1 * m[k] + one_minus_b1 * g;
    const float vk = p.beta2 * v[k] + one_minus_b2 * g * g;
    m[k] = mk;
    v[k] = vk;
    direction[k] = mk / (std::sqrt(vk) + p.epsilon);
  }
}

// GCC 12 reports a false -Wmaybe-uninitialized inside its own AVX-512 intrinsics
// (_mm512_undefined_ps) when Eigen's vectorised tanh is inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// factor[k] = 1 - tanh^2(x[k]) where consolidating[k], else 1 (x, factor: aligned blocks).
inline void sech2_where(const float* x, const bool* consolidating, float* factor, std::size_t n) {
  Eigen::Map<Eigen::ArrayXf, Eigen::Aligned32> out(factor, static_cast<Eigen::Index>(n));
  out = Eigen::Map<const Eigen::ArrayXf, Eigen::Aligned32>(x, static_cast<Eigen::Index>(n)).tanh();
  for (std::size_t k = 0; k < n; ++k) {
    const float t = factor[k];
    factor[k] = consolidating[k] ? 1.0f - t * t : 1.0f;
  }
}
#pragma GCC diagnostic pop

// a * b > 0 without the product (which could underflow to 0 for tiny values).
inline bool same_sign(float a, float b) { return (a > 0.0f && b > 0.0f) || (a < 0.0f && b < 0.0f); }

void check_size(std::size_t expected, std::size_t got, const char* who, const char* what) {
  if (expected != got) {
    throw std::invalid_argument(std::string("MetaplasticAdam::") + who + ": " + what + " has " +
                                std::to_string(got) + " elements, the slot has " +
                                std::to_string(expected));
  }
}

}  // namespace

std::string_view to_string(MetaplasticRule rule) {
  switch (rule) {
    case MetaplasticRule::interval:
      return "interval";
    case MetaplasticRule::global:
      return "global";
  }
  return "unknown";
}

MetaplasticRule parse_rule(std::string_view name) {
  if (name == "interval") return MetaplasticRule::interval;
  if (name == "global") return MetaplasticRule::global;
  throw std::invalid_argument("unknown metaplastic rule '" + std::string(name) +
                              "': use interval or global");
}

float metaplastic_factor(const Quantizer& quantizer, MetaplasticRule rule, float mstar,
                         float hidden, float first_moment) {
  float x = 0.0f;
  bool consolidating = false;
  switch (rule) {
    case MetaplasticRule::interval: {
      const std::size_t j = quantizer.interval_index(hidden);
      const float offset = hidden - quantizer.threshold(j);
      x = mstar * std::abs(offset) * quantizer.inverse_half_width(j);
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

void MetaplasticAdam::set_threads(int threads) {
  if (threads < 1) {
    throw std::invalid_argument("optimizer: thread count must be >= 1, got " +
                                std::to_string(threads));
  }
  threads_ = threads;
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
  const bool metaplastic = config_.mstar > 0.0f;
  const Quantizer& quantizer = quantizer_;
  const std::size_t size = hidden.size();
  const std::size_t blocks = (size + kBlock - 1) / kBlock;
  float* h_all = hidden.data();
  float* q_all = quantized.data();
  const float* g_all = grad.data();
  float* m_all = state.first.data();
  float* v_all = state.second.data();

#pragma omp parallel for schedule(static) num_threads(threads_)
  for (std::size_t b = 0; b < blocks; ++b) {
    alignas(64) float direction[kBlock];
    alignas(64) float centre[kBlock];
    alignas(64) float inverse_half[kBlock];
    alignas(64) float x[kBlock];
    alignas(64) float factor[kBlock];
    bool consolidating[kBlock];
    const std::size_t begin = b * kBlock;
    const std::size_t n = std::min(kBlock, size - begin);
    float* h = h_all + begin;
    adam_moments_block(p, h, g_all + begin, m_all + begin, v_all + begin, direction, n);
    const float* m = m_all + begin;
    if (metaplastic) {
      switch (rule) {
        case MetaplasticRule::interval:
          quantizer.interval_centres({h, n}, {centre, n}, {inverse_half, n});
          for (std::size_t k = 0; k < n; ++k) {
            const float offset = h[k] - centre[k];
            x[k] = p.mstar * std::abs(offset) * inverse_half[k];
            consolidating[k] = same_sign(offset, m[k]);
          }
          break;
        case MetaplasticRule::global:
          for (std::size_t k = 0; k < n; ++k) {
            x[k] = p.mstar * std::abs(h[k]);
            consolidating[k] = same_sign(h[k], m[k]);
          }
          break;
      }
      sech2_where(x, consolidating, factor, n);
      for (std::size_t k = 0; k < n; ++k) h[k] -= p.step_size * (factor[k] * direction[k]);
    } else {
      for (std::size_t k = 0; k < n; ++k) h[k] -= p.step_size * direction[k];
    }
    quantizer.quantize({h, n}, {q_all + begin, n});
  }
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
