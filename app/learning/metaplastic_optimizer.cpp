#include "app/learning/metaplastic_optimizer.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
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
  float beta1, beta2, epsilon, weight_decay, step_size, mstar, depth_rate;
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

// The interval rules' attenuation argument x and consolidating flag for one block (M = 1 - tanh^2
// x where consolidating); `consolidation` is c (depth) or s (importance), else unused.
void interval_arguments(const StepParams& p, MetaplasticRule rule, const float* h, const float* m,
                        const float* consolidation, const float* centre, const float* inverse_half,
                        float* x, float* consolidating, std::size_t n) {
  const float mstar = p.mstar;
  if (rule == MetaplasticRule::interval || rule == MetaplasticRule::interval_whole) {
    const float scale = rule == MetaplasticRule::interval ? mstar : 0.5f * mstar;
    for (std::size_t k = 0; k < n; ++k) {
      const float offset = h[k] - centre[k];
      x[k] = scale * std::abs(offset) * inverse_half[k];
      consolidating[k] = same_sign(offset, m[k]) ? 1.0f : 0.0f;
    }
    return;
  }
  // The selective rules: d / h_j first, then with the weight's state (each loop vectorises).
  for (std::size_t k = 0; k < n; ++k) {
    const float offset = h[k] - centre[k];
    x[k] = std::abs(offset) * inverse_half[k];
    consolidating[k] = same_sign(offset, m[k]) ? 1.0f : 0.0f;
  }
  if (rule == MetaplasticRule::depth) {
    for (std::size_t k = 0; k < n; ++k) x[k] = mstar * (x[k] + consolidation[k]);
  } else {
    for (std::size_t k = 0; k < n; ++k) x[k] = mstar * (x[k] * consolidation[k]);
  }
}

// Rule depth, after the step of one block (see next_depth(), which this computes blockwise):
// `before` holds the hidden weights before the step, `quantized_before` their quantized values and
// `inverse_half` / `centre` their interval.
void update_depth_block(const Quantizer& quantizer, float depth_rate, const float* before,
                        const float* quantized_before, const float* after,
                        const float* quantized_after, const float* centre,
                        const float* inverse_half, const float* consolidating, float* depth,
                        std::size_t n) {
  const float first_threshold = quantizer.threshold(0);
  const float last_threshold = quantizer.threshold(quantizer.size() - 2);
  for (std::size_t k = 0; k < n; ++k) {
    const float moved = std::abs(after[k] - before[k]) * inverse_half[k];
    float c = depth[k];
    if (consolidating[k] != 0.0f) {
      c = std::max(0.0f, c - moved);
    } else {
      const bool outer =
          after[k] > before[k] ? centre[k] == last_threshold : centre[k] == first_threshold;
      if (!outer) c += depth_rate * moved;
    }
    depth[k] = quantized_before[k] == quantized_after[k] ? c : 0.0f;
  }
}

// The quantized values of one block's new hidden weights h. Without `changed`: q = quantize(h).
// With it, `q_before` holds the values before the step (computed in cache from the old h, which
// the caller's q also holds) and only the elements that change are written to q, their indices
// (first + k) appended to `changed`: the weight store's list, found here, and q is not streamed
// through memory at every step.
void store_quantized(const Quantizer& quantizer, const float* __restrict h,
                     const float* __restrict q_before, float* __restrict q, std::size_t n,
                     std::size_t first, std::vector<std::uint32_t>* changed) {
  if (changed == nullptr) {
    quantizer.quantize({h, n}, {q, n});
    return;
  }
  alignas(64) float fresh[kBlock];
  quantizer.quantize({h, n}, {fresh, n});
  int differs = 0;
  for (std::size_t k = 0; k < n; ++k) differs |= fresh[k] != q_before[k];
  if (differs == 0) return;
  for (std::size_t k = 0; k < n; ++k) {
    if (fresh[k] == q_before[k]) continue;
    q[k] = fresh[k];
    changed->push_back(static_cast<std::uint32_t>(first + k));
  }
}

// The whole update of one block of a quantized tensor, whose first element is element `first` of
// the tensor; `consolidation` is null unless the rule keeps per-weight state.
void quantized_block(const StepParams& p, MetaplasticRule rule, const Quantizer& quantizer,
                     float* __restrict h, float* __restrict q, const float* __restrict g,
                     float* __restrict m, float* __restrict v, float* __restrict consolidation,
                     std::size_t n, std::size_t first, std::vector<std::uint32_t>* changed) {
  alignas(64) float q_before[kBlock];  // what the change list and the depth rule compare with
  if (changed != nullptr || (rule == MetaplasticRule::depth && p.mstar > 0.0f)) {
    quantizer.quantize({h, n}, {q_before, n});
  }
  alignas(64) float direction[kBlock];
  adam_moments_block(p, h, g, m, v, direction, n);
  const float mstar = p.mstar;
  if (mstar > 0.0f) {
    alignas(64) float centre[kBlock];
    alignas(64) float inverse_half[kBlock];
    alignas(64) float x[kBlock];
    alignas(64) float consolidating[kBlock];  // 1 or 0
    alignas(64) float t[kBlock];
    alignas(64) float before[kBlock];
    if (rule == MetaplasticRule::global) {
      for (std::size_t k = 0; k < n; ++k) {
        x[k] = mstar * std::abs(h[k]);
        consolidating[k] = same_sign(h[k], m[k]) ? 1.0f : 0.0f;
      }
    } else {
      quantizer.interval_centres({h, n}, {centre, n}, {inverse_half, n});
      interval_arguments(p, rule, h, m, consolidation, centre, inverse_half, x, consolidating, n);
    }
    tanh_block(x, t, n);
    if (rule == MetaplasticRule::depth) std::copy(h, h + n, before);
    const float step_size = p.step_size;
    for (std::size_t k = 0; k < n; ++k) {
      // Consolidating: 1 - tanh^2; otherwise exactly 1.
      const float factor = 1.0f - consolidating[k] * t[k] * t[k];
      h[k] -= step_size * (factor * direction[k]);
    }
    store_quantized(quantizer, h, q_before, q, n, first, changed);
    if (rule == MetaplasticRule::depth) {
      update_depth_block(quantizer, p.depth_rate, before, q_before, h, q, centre, inverse_half,
                         consolidating, consolidation, n);
    }
    return;
  }
  const float step_size = p.step_size;
  for (std::size_t k = 0; k < n; ++k) h[k] -= step_size * direction[k];
  store_quantized(quantizer, h, q_before, q, n, first, changed);
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
    {MetaplasticRule::depth, "depth"},
    {MetaplasticRule::importance, "importance"},
});

}  // namespace

std::string_view to_string(MetaplasticRule rule) {
  return common::enum_name(kRuleNames, rule, "unknown");
}

MetaplasticRule parse_rule(std::string_view name) {
  return common::parse_enum(kRuleNames, name, "--rule: unknown metaplastic rule");
}

bool has_consolidation_state(MetaplasticRule rule) {
  return rule == MetaplasticRule::depth || rule == MetaplasticRule::importance;
}

float metaplastic_factor(const Quantizer& quantizer, MetaplasticRule rule, float mstar,
                         float hidden, float first_moment, float consolidation) {
  float x = 0.0f;
  bool consolidating = false;
  if (rule == MetaplasticRule::global) {
    x = mstar * std::abs(hidden);
    consolidating = same_sign(hidden, first_moment);
  } else {
    const std::size_t j = quantizer.interval_index(hidden);
    const float offset = hidden - quantizer.threshold(j);
    const float inverse_half = quantizer.inverse_half_width(j);
    consolidating = same_sign(offset, first_moment);
    switch (rule) {
      case MetaplasticRule::interval:
        x = mstar * std::abs(offset) * inverse_half;
        break;
      case MetaplasticRule::interval_whole:
        x = 0.5f * mstar * std::abs(offset) * inverse_half;
        break;
      case MetaplasticRule::depth:
        x = mstar * (std::abs(offset) * inverse_half + consolidation);
        break;
      case MetaplasticRule::importance:
        x = mstar * (std::abs(offset) * inverse_half * consolidation);
        break;
      case MetaplasticRule::global:
        break;
    }
  }
  if (!consolidating) return 1.0f;
  const float t = std::tanh(x);
  return 1.0f - t * t;
}

float next_depth(const Quantizer& quantizer, float depth_rate, float depth, float before,
                 float after, bool consolidating) {
  if (quantizer.level_index(before) != quantizer.level_index(after)) return 0.0f;
  const std::size_t j = quantizer.interval_index(before);
  const float moved = std::abs(after - before) * quantizer.inverse_half_width(j);
  if (consolidating) return std::max(0.0f, depth - moved);
  const bool outer = after > before ? j + 2 == quantizer.size() : j == 0;
  return outer ? depth : depth + depth_rate * moved;
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
  if (!(config_.depth_rate >= 0.0f) || !std::isfinite(config_.depth_rate)) {
    throw std::invalid_argument("optimizer: the depth rate must be finite and >= 0, got " +
                                std::to_string(config_.depth_rate));
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
  moments_.push_back({std::vector<float>(size, 0.0f), std::vector<float>(size, 0.0f),
                      std::vector<float>(has_consolidation_state(config_.rule) ? size : 0, 0.0f)});
  quantized_slot_.push_back(true);
  importance_ready_.push_back(false);
  return moments_.size() - 1;
}

std::size_t MetaplasticAdam::add_plain_tensor(std::size_t size) {
  moments_.push_back({std::vector<float>(size, 0.0f), std::vector<float>(size, 0.0f), {}});
  quantized_slot_.push_back(false);
  importance_ready_.push_back(false);
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
  if (config_.rule == MetaplasticRule::importance && step_count_ > 0) {
    for (std::size_t slot = 0; slot < moments_.size(); ++slot) accumulate_importance(slot);
  }
  for (auto& m : moments_) {
    std::fill(m.first.begin(), m.first.end(), 0.0f);
    std::fill(m.second.begin(), m.second.end(), 0.0f);
  }
  step_count_ = 0;
  step_size_ = 0.0f;
}

void MetaplasticAdam::accumulate_importance(std::size_t slot) {
  AdamMoments& state = moments_[slot];
  if (state.consolidation.empty()) return;
  double sum = 0.0;
  for (const float v : state.second) sum += v;
  const double mean = sum / static_cast<double>(state.second.size());
  if (!(mean > 0.0)) return;  // a task that never stepped this tensor
  const auto inverse_mean = static_cast<float>(1.0 / mean);
  for (std::size_t k = 0; k < state.second.size(); ++k) {
    const float s = state.consolidation[k];
    state.consolidation[k] = std::sqrt(s * s + state.second[k] * inverse_mean);
  }
  importance_ready_[slot] = true;
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
    const std::size_t expected = moments_[s].consolidation.size();
    if (moments[s].consolidation.empty()) {
      moments[s].consolidation.assign(expected, 0.0f);
    } else if (moments[s].consolidation.size() != expected) {
      throw std::invalid_argument(
          "optimizer: saved consolidation state of tensor " + std::to_string(s) + " has " +
          std::to_string(moments[s].consolidation.size()) + " elements, the rule " +
          std::string(to_string(config_.rule)) + " needs " + std::to_string(expected));
    }
  }
  moments_ = std::move(moments);
  for (std::size_t s = 0; s < moments_.size(); ++s) {
    const auto& c = moments_[s].consolidation;
    importance_ready_[s] = std::any_of(c.begin(), c.end(), [](float x) { return x != 0.0f; });
  }
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
  update_quantized_blocks(slot, hidden, quantized, grad, nullptr);
}

void MetaplasticAdam::update_quantized(std::size_t slot, std::span<float> hidden,
                                       std::span<float> quantized, std::span<const float> grad,
                                       std::vector<std::uint32_t>& changed) {
  update_quantized_blocks(slot, hidden, quantized, grad, &changed);
}

void MetaplasticAdam::update_quantized_blocks(std::size_t slot, std::span<float> hidden,
                                              std::span<float> quantized,
                                              std::span<const float> grad,
                                              std::vector<std::uint32_t>* changed) {
  AdamMoments& state = slot_moments(slot, hidden.size(), "update_quantized");
  if (!quantized_slot_[slot]) {
    throw std::invalid_argument("MetaplasticAdam::update_quantized: slot " + std::to_string(slot) +
                                " was registered as a plain tensor");
  }
  check_size(hidden.size(), quantized.size(), "update_quantized", "quantized");
  check_size(hidden.size(), grad.size(), "update_quantized", "grad");
  if (hidden.size() > UINT32_MAX) {
    throw std::invalid_argument(
        "MetaplasticAdam::update_quantized: tensors of 2^32 or more "
        "elements are not supported");
  }

  const StepParams p{config_.beta1, config_.beta2, config_.epsilon,   config_.weight_decay,
                     step_size_,    config_.mstar, config_.depth_rate};
  // Rule importance before any task has ended: the interval rule (s = 1 for every weight).
  const bool importance_pending =
      config_.rule == MetaplasticRule::importance && !importance_ready_[slot];
  const MetaplasticRule rule = importance_pending ? MetaplasticRule::interval : config_.rule;
  const Quantizer& quantizer = quantizer_;
  const std::size_t size = hidden.size();
  float* h = hidden.data();
  float* q = quantized.data();
  const float* g = grad.data();
  float* m = state.first.data();
  float* v = state.second.data();
  float* c = state.consolidation.empty() ? nullptr : state.consolidation.data();
  // Small tensors are not worth a thread. Each thread takes one part of the blocks and collects
  // its changes; the parts are concatenated in order (the same list for any thread count).
  const std::size_t blocks = (size + kBlock - 1) / kBlock;
  const std::size_t parts = size >= 64 * kBlock ? static_cast<std::size_t>(threads_) : 1;
  if (changed_parts_.size() < parts) changed_parts_.resize(parts);
  util::parallel_ranges(parts, static_cast<int>(parts), [&](std::size_t first, std::size_t last) {
    for (std::size_t part = first; part < last; ++part) {
      std::vector<std::uint32_t>* part_changed = nullptr;
      if (changed != nullptr) {
        part_changed = &changed_parts_[part];
        part_changed->clear();
      }
      for (std::size_t b = blocks * part / parts; b < blocks * (part + 1) / parts; ++b) {
        const std::size_t begin = b * kBlock;
        const std::size_t n = std::min(kBlock, size - begin);
        quantized_block(p, rule, quantizer, h + begin, q + begin, g + begin, m + begin, v + begin,
                        c ? c + begin : nullptr, n, begin, part_changed);
      }
    }
  });
  if (changed == nullptr) return;
  changed->clear();
  for (std::size_t part = 0; part < parts; ++part) {
    changed->insert(changed->end(), changed_parts_[part].begin(), changed_parts_[part].end());
  }
}

void MetaplasticAdam::update_plain(std::size_t slot, std::span<float> param,
                                   std::span<const float> grad) {
  AdamMoments& state = slot_moments(slot, param.size(), "update_plain");
  check_size(param.size(), grad.size(), "update_plain", "grad");
  const StepParams p{config_.beta1, config_.beta2, config_.epsilon,   config_.weight_decay,
                     step_size_,    config_.mstar, config_.depth_rate};
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
