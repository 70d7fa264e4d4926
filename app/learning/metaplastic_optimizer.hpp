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
  // Selective (docs/method.md section 6): the interval rule with a per-weight consolidation depth
  // c >= 0 in units of h_j, M = 1 - tanh^2(m* (d / h_j + c)). A step that moves a weight toward
  // an inner level (away from T_j) grows c by depth_rate |step| / h_j; a consolidating step
  // consumes |step| / h_j of it; a change of stored level clears it. At the outer levels W_H itself
  // goes beyond the level (the quantizer saturates) and no c grows, so with 2 levels this is the
  // BNN rule exactly.
  depth,
  // Selective, driven by Adam's second moment: M = 1 - tanh^2(m* s d / h_j), where
  // s^2 = the sum over the tasks trained so far of v / mean(v) at the task's end (per tensor).
  // Weights the earlier tasks' losses were sensitive to are held; weights they never used (a pixel
  // that is always 0) are freed. Until a task has ended, a tensor trains under the interval rule
  // (s = 1 for every weight).
  importance,
};

// True for the rules that keep per-weight consolidation state (AdamMoments::consolidation).
bool has_consolidation_state(MetaplasticRule rule);

std::string_view to_string(MetaplasticRule rule);
// "interval", "interval-whole", "global", "depth" or "importance"; throws std::invalid_argument
// listing the known rules otherwise.
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
  // Rule depth: the fraction of a step toward an inner level that becomes depth (>= 0).
  float depth_rate = 0.25f;
};

// The reference definition of the factor applied to one weight's step, given its hidden value and
// its new first moment m_t: M if the step is consolidating (see MetaplasticRule), else 1;
// `consolidation` is the weight's c (rule depth) or s (rule importance), unused by the others. The
// fused kernel computes the same numbers (the tests hold it to this function).
float metaplastic_factor(const Quantizer& quantizer, MetaplasticRule rule, float mstar,
                         float hidden, float first_moment, float consolidation = 0.0f);

// Rule depth's reference update of one weight's depth c after a step from `before` to `after`
// (`consolidating` as the factor decided it). The fused kernel holds to it.
float next_depth(const Quantizer& quantizer, float depth_rate, float depth, float before,
                 float after, bool consolidating);

// Adam moments of one tensor, and the selective rules' per-weight state.
struct AdamMoments {
  std::vector<float> first;   // m
  std::vector<float> second;  // v
  // Rule depth: c; rule importance: s. Empty for the other rules and for plain tensors. Kept
  // across tasks (reset() clears the moments only).
  std::vector<float> consolidation;
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
  // The same for a `quantized` that holds the quantizer's values of `hidden` (as the previous
  // update left it): only the elements that change are written, and `changed` receives (replacing
  // its content) their indices, ascending: what a weight store must reprogram, found in the same
  // pass (docs/architecture.md, "The training step").
  void update_quantized(std::size_t slot, std::span<float> hidden, std::span<float> quantized,
                        std::span<const float> grad, std::vector<std::uint32_t>& changed);
  // Plain Adam (+ weight decay) on a tensor that is not quantized.
  void update_plain(std::size_t slot, std::span<float> param, std::span<const float> grad);

  // Fresh state (zero moments, t = 0): called at the start of every task. Rule importance first
  // adds the finished task's v / mean(v) to each weight's s^2.
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
  // Restores a saved state; the moment and consolidation sizes must match the registered
  // tensors (a state saved without consolidation restores it as zero).
  void restore(std::int64_t step_count, std::vector<AdamMoments> moments);

 private:
  AdamMoments& slot_moments(std::size_t slot, std::size_t size, const char* who);
  // Rule importance at a task's end: s^2 += v / mean(v) over the tensor of `slot`.
  void accumulate_importance(std::size_t slot);
  void update_quantized_blocks(std::size_t slot, std::span<float> hidden,
                               std::span<float> quantized, std::span<const float> grad,
                               std::vector<std::uint32_t>* changed);

  OptimizerConfig config_;
  Quantizer quantizer_;
  int threads_ = 1;
  std::vector<AdamMoments> moments_;
  std::vector<bool> quantized_slot_;
  // Rule importance: whether the slot's s holds an ended task's importance (else s = 1 is used).
  std::vector<bool> importance_ready_;
  std::int64_t step_count_ = 0;
  float step_size_ = 0.0f;
  // Per thread range, the changed indices of update_quantized (kept across steps: no allocation).
  std::vector<std::vector<std::uint32_t>> changed_parts_;
};

}  // namespace metaplast::learning
