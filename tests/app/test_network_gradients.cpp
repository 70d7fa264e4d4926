// The backward pass (softmax cross-entropy, BatchNorm, linear layers, straight-through sign)
// against finite differences of the forward pass.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "app/learning/network.hpp"

using namespace metaplast::learning;

namespace {

constexpr std::size_t kBatch = 8;

struct Fixture {
  Network network;
  std::vector<float> inputs;
  std::vector<std::uint8_t> labels;

  explicit Fixture(HiddenActivation activation)
      : network(make_config(activation), Quantizer::uniform(9), kBatch) {
    std::mt19937 rng(17);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    // Set W_Q directly (continuous values): the gradient is with respect to W_Q.
    for (DenseLayer& layer : network.layers()) {
      for (float& w : layer.quantized) w = u(rng);
      for (float& g : layer.batchnorm.gamma) g = 1.0f + 0.3f * u(rng);
      for (float& b : layer.batchnorm.beta) b = 0.2f * u(rng);
    }
    inputs.resize(kBatch * network.config().inputs);
    for (float& x : inputs) x = 0.5f * (u(rng) + 1.0f);
    for (std::size_t b = 0; b < kBatch; ++b) labels.push_back(static_cast<std::uint8_t>(b % 4));
  }

  static NetworkConfig make_config(HiddenActivation activation) {
    NetworkConfig config;
    config.inputs = 7;
    config.hidden = {6, 5};
    config.outputs = 4;
    config.activation = activation;
    return config;
  }

  // Mean cross-entropy of the training-mode forward pass (batch statistics), no state change.
  double loss() {
    const BatchResult r = network.evaluate_batch(inputs.data(), labels, BatchNormStats::batch,
                                                 network.batchnorm_state());
    return r.loss_sum / static_cast<double>(r.count);
  }

  void compute_gradients() { network.train_batch(inputs.data(), labels); }
};

// Central difference of fixture.loss() with respect to *value.
double numeric_gradient(Fixture& f, float* value) {
  const float h = 1e-3f;
  const float saved = *value;
  *value = saved + h;
  const double up = f.loss();
  *value = saved - h;
  const double down = f.loss();
  *value = saved;
  return (up - down) / (2.0 * static_cast<double>(h));
}

void check_close(double analytic, double numeric) {
  CHECK(analytic == Approx(numeric).epsilon(2e-2).margin(2e-3));
}

}  // namespace

TEST_CASE("with a differentiable activation, every gradient matches finite differences",
          "[network]") {
  // hardtanh has exactly the straight-through mask as its derivative, so this checks the whole
  // backward pass of the sign network: softmax-CE, BatchNorm, linear layers and the mask.
  Fixture f(HiddenActivation::hardtanh);
  f.compute_gradients();
  const auto& layers = f.network.layers();
  std::size_t nonzero = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    DenseLayer& layer = f.network.layers()[l];
    const std::vector<float> grad = layer.grad;
    const std::vector<float> grad_gamma = layer.grad_gamma;
    const std::vector<float> grad_beta = layer.grad_beta;
    for (std::size_t i = 0; i < grad.size(); ++i) {
      INFO("layer " << l << " weight " << i);
      check_close(grad[i], numeric_gradient(f, &layer.quantized[i]));
      if (std::abs(grad[i]) > 1e-3f) ++nonzero;
    }
    for (std::size_t i = 0; i < grad_gamma.size(); ++i) {
      INFO("layer " << l << " feature " << i);
      check_close(grad_gamma[i], numeric_gradient(f, &layer.batchnorm.gamma[i]));
      check_close(grad_beta[i], numeric_gradient(f, &layer.batchnorm.beta[i]));
    }
  }
  CHECK(nonzero > 40);  // the check is not passing on zeros
}

TEST_CASE("with sign activations, the output layer's gradients are exact", "[network]") {
  // The sign inputs of the last layer do not move under small changes of its own parameters.
  Fixture f(HiddenActivation::sign);
  f.compute_gradients();
  DenseLayer& last = f.network.layers().back();
  const std::vector<float> grad = last.grad;
  for (std::size_t i = 0; i < grad.size(); ++i) {
    INFO("weight " << i);
    check_close(grad[i], numeric_gradient(f, &last.quantized[i]));
  }
  const std::vector<float> grad_gamma = last.grad_gamma;
  const std::vector<float> grad_beta = last.grad_beta;
  for (std::size_t i = 0; i < grad_gamma.size(); ++i) {
    check_close(grad_gamma[i], numeric_gradient(f, &last.batchnorm.gamma[i]));
    check_close(grad_beta[i], numeric_gradient(f, &last.batchnorm.beta[i]));
  }
}

TEST_CASE("the straight-through gradient stops where |BatchNorm output| > 1", "[network]") {
  Fixture f(HiddenActivation::sign);
  // Unit 2 of the first hidden layer: beta = 5 puts its BatchNorm output above 1 for every row
  // (|x_hat| <= sqrt(batch - 1) < 3 and |gamma| < 1.3).
  DenseLayer& first = f.network.layers()[0];
  first.batchnorm.beta[2] = 5.0f;
  f.compute_gradients();
  const std::size_t inputs = first.inputs;
  for (std::size_t i = 0; i < inputs; ++i) CHECK(first.grad[2 * inputs + i] == 0.0f);
  CHECK(first.grad_gamma[2] == 0.0f);
  CHECK(first.grad_beta[2] == 0.0f);
  // Other units still learn.
  double other = 0.0;
  for (std::size_t i = 0; i < inputs; ++i) other += std::abs(first.grad[3 * inputs + i]);
  CHECK(other > 0.0);
}

TEST_CASE("sign activations: forward gives +-1 and evaluation with running statistics",
          "[network]") {
  Fixture f(HiddenActivation::sign);
  std::mt19937_64 rng(1);
  f.network.initialise(rng);
  for (const DenseLayer& layer : f.network.layers()) {
    for (float w : layer.quantized) CHECK(std::abs(w) <= 1.0f);
    for (float v : layer.batchnorm.running_var) CHECK(v == 1.0f);
  }
  f.compute_gradients();
  // Running statistics moved from their initial values by momentum 0.1.
  const BatchNormState& bn = f.network.layers()[0].batchnorm;
  bool moved = false;
  for (float m : bn.running_mean) moved = moved || m != 0.0f;
  CHECK(moved);
  const BatchResult r = f.network.evaluate_batch(f.inputs.data(), f.labels, BatchNormStats::running,
                                                 f.network.batchnorm_state());
  CHECK(r.count == kBatch);
  CHECK(std::isfinite(r.loss_sum));
  CHECK_THROWS_AS(f.network.train_batch(f.inputs.data(), {f.labels.data(), 1}),
                  std::invalid_argument);
}

TEST_CASE("threshold initialisation starts every hidden weight within init * h_j of a threshold",
          "[network]") {
  NetworkConfig config;
  config.inputs = 40;
  config.hidden = {30};
  config.outputs = 4;
  config.init = 0.1f;
  config.init_mode = InitMode::thresholds;
  const Quantizer uneven({-1.0f, -0.6f, -0.1f, 0.0f, 0.3f, 1.0f});
  Network network(config, uneven, kBatch);
  std::mt19937_64 rng(3);
  network.initialise(rng);
  std::vector<std::size_t> near_threshold(uneven.size() - 1, 0);
  std::size_t weights = 0;
  for (const DenseLayer& layer : network.layers()) {
    for (std::size_t k = 0; k < layer.hidden.size(); ++k) {
      const float w = layer.hidden[k];
      bool found = false;
      for (std::size_t j = 0; j + 1 < uneven.size(); ++j) {
        if (std::abs(w - uneven.threshold(j)) <= 0.1f * uneven.half_width(j) + 1e-6f) {
          ++near_threshold[j];
          found = true;
        }
      }
      INFO("weight " << w);
      CHECK(found);
      CHECK(layer.quantized[k] == uneven.quantize(w));
      ++weights;
    }
  }
  // Thresholds are drawn uniformly: each of the 5 gets about a fifth of the 1,320 weights.
  for (std::size_t count : near_threshold) {
    CHECK(count > weights / 5 - weights / 15);
    CHECK(count < weights / 5 + weights / 15);
  }
}
