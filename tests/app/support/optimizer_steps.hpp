// Helpers shared by the optimizer tests: random tensors and a few optimizer steps on one tensor.
// Header-only: tests/CMakeLists.txt makes every test_*.cpp an executable.
#pragma once

#include <random>
#include <vector>

#include "app/learning/metaplastic_optimizer.hpp"

namespace metaplast::test {

// n values uniform in [-scale, scale].
inline std::vector<float> random_vector(std::size_t n, float scale, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

struct Run {
  std::vector<float> hidden, quantized;
  std::vector<learning::AdamMoments> state;  // the optimizer's moments and consolidation state
};

// `steps` optimizer steps on one tensor, fresh random gradients in [-1, 1] each step (the same
// gradients for the same seed).
inline Run run_steps(const learning::OptimizerConfig& config, const learning::Quantizer& quantizer,
                     std::vector<float> hidden, int steps, int threads, unsigned gradient_seed) {
  learning::MetaplasticAdam optimizer(config, quantizer, threads);
  const std::size_t slot = optimizer.add_quantized_tensor(hidden.size());
  std::vector<float> quantized(hidden.size());
  std::mt19937 rng(gradient_seed);
  for (int s = 0; s < steps; ++s) {
    const std::vector<float> grad = random_vector(hidden.size(), 1.0f, rng);
    optimizer.begin_step();
    optimizer.update_quantized(slot, hidden, quantized, grad);
  }
  return {hidden, quantized, optimizer.moments()};
}

// One step of one tensor from a fresh state (zero moments, step 1) that holds `consolidation` (a
// selective rule's c or s; its size or empty), with the gradient `grad`.
inline Run one_step(const learning::OptimizerConfig& config, const learning::Quantizer& quantizer,
                    std::vector<float> hidden, std::vector<float> consolidation,
                    const std::vector<float>& grad, int threads = 1) {
  learning::MetaplasticAdam optimizer(config, quantizer, threads);
  const std::size_t n = hidden.size();
  const std::size_t slot = optimizer.add_quantized_tensor(n);
  optimizer.restore(0, {{std::vector<float>(n), std::vector<float>(n), std::move(consolidation)}});
  std::vector<float> quantized(n);
  optimizer.begin_step();
  optimizer.update_quantized(slot, hidden, quantized, grad);
  return {hidden, quantized, optimizer.moments()};
}

}  // namespace metaplast::test
