// Metaplastic Adam (docs/method.md section 1): Adam on the hidden weights W_H with the
// gradient taken with respect to the quantized weights W_Q (straight through the quantizer); where
// a step would move a hidden weight toward the threshold whose crossing changes its stored level,
// the step (not the stored moments) is multiplied by a metaplastic factor M in (0, 1].
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "app/learning/quantizer.hpp"

namespace metaplast::learning {

// Which meta-function attenuates the consolidating steps. New rules are added here and in
// metaplastic_factor() / the fused kernel's switch.
enum class MetaplasticRule {
  // Default (docs/method.md section 1): j = containing interval, d = |W_H - T_j|, h_j its
  // half-width;
  // M = 1 - tanh^2(m* d / h_j) where (W_H - T_j) * m_t > 0.
  interval,
  // The same with d normalised by the whole interval: M = 1 - tanh^2(m* d / (2 h_j)) (the
  // variant the first sessions measured forgetting; kept for the evidence of docs/method.md).
  interval_whole,
  // The BNN rule (docs/method.md section 1): M = 1 - tanh^2(m* |W_H|) where sign(W_H) * m_t > 0.
  global,
};

std::string_view to_string(MetaplasticRule rule);
// "interval", "interval-whole" or "global"; throws std::invalid_argument listing the known rules
// otherwise.
MetaplasticRule parse_rule(std::string_view name);

struct OptimizerConfig {
  float learning_rate = 0.005f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  // Added to the gradient: grad += weight_decay * W_H (as the BNN code; no clipping anywhere).
  float weight_decay = 1e-7f;
  // m*; 0 disables metaplasticity (plain Adam, the forgetting baseline).
  float mstar = 3.0f;
  MetaplasticRule rule = MetaplasticRule::interval;
};

// The reference definition of the factor applied to one weight's step, given its hidden value and
// its new first moment m_t: M if the step is consolidating (see MetaplasticRule), else 1. The
// fused kernel computes the same numbers (the tests hold it to this function).
float metaplastic_factor(const Quantizer& quantizer, MetaplasticRule rule, float mstar,
                         float hidden, float first_moment);

// Adam moments of one tensor.
struct AdamMoments {
  std::vector<float> first;   // m
  std::vector<float> second;  // v
};

// The optimizer for one network: tensors are registered once (slots), then every training step
// is begin_step() followed by one update_*() per tensor. Quantized tensors get the metaplastic
// rule; plain tensors (BatchNorm gamma/beta) get plain Adam. Updates are elementwise, so results do
// not depend on the thread count.
class MetaplasticAdam {
 public:
  // threads: how many threads the training hot path uses (>= 1): the fused pass here and the
  // network's matrix products share the process-wide pool (util::set_compute_threads).
  MetaplasticAdam(OptimizerConfig config, Quantizer quantizer, int threads = 1);

  // Registers a tensor of `size` elements and returns its slot.
  std::size_t add_quantized_tensor(std::size_t size);
  std::size_t add_plain_tensor(std::size_t size);

  // Advances the step counter t (all tensors step together) and the bias-corrected step size
  // lr * sqrt(1 - beta2^t) / (1 - beta1^t).
  void begin_step();

  // One fused pass: Adam moments from `grad` (w.r.t. W_Q) + weight decay, the metaplastic factor,
  // the new hidden weights and their quantized values. Spans must all have the slot's size
  // (std::invalid_argument otherwise).
  void update_quantized(std::size_t slot, std::span<float> hidden, std::span<float> quantized,
                        std::span<const float> grad);
  // Plain Adam (+ weight decay) on a tensor that is not quantized.
  void update_plain(std::size_t slot, std::span<float> param, std::span<const float> grad);

  // Fresh state (zero moments, t = 0): called at the start of every task.
  void reset();

  const OptimizerConfig& config() const { return config_; }
  // A new learning rate for the following steps (a schedule); the moments are kept. Throws
  // std::invalid_argument unless positive and finite.
  void set_learning_rate(float learning_rate);
  const Quantizer& quantizer() const { return quantizer_; }
  void set_threads(int threads);

  // State, for checkpoints.
  std::int64_t step_count() const { return step_count_; }
  const std::vector<AdamMoments>& moments() const { return moments_; }
  // Restores a saved state; the moment sizes must match the registered tensors.
  void restore(std::int64_t step_count, std::vector<AdamMoments> moments);

 private:
  AdamMoments& slot_moments(std::size_t slot, std::size_t size, const char* who);

  OptimizerConfig config_;
  Quantizer quantizer_;
  int threads_ = 1;
  std::vector<AdamMoments> moments_;
  std::vector<bool> quantized_slot_;
  std::int64_t step_count_ = 0;
  float step_size_ = 0.0f;
};

}  // namespace metaplast::learning
