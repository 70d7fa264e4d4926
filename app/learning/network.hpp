// The quantized multilayer perceptron of docs/method.md: fully connected layers without bias
// using the quantized weights W_Q, BatchNorm1d after every layer, sign activations with the
// straight-through gradient on hidden layers, softmax cross-entropy on the last BatchNorm output.
// Batches are rows of row-major float matrices; all buffers are allocated at construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "app/learning/exact_product.hpp"
#include "app/learning/quantizer.hpp"

namespace metaplast::learning {

// The hidden activation. sign is the method; hardtanh (clamp to [-1, 1]) has the same backward
// mask (gradient passed where |x| <= 1) and a differentiable forward, so finite differences can
// check the whole backward pass. It is a test surrogate, not a training option.
enum class HiddenActivation { sign, hardtanh };

// How BatchNorm normalises at test time: with its running statistics, or with the statistics of
// the test batch itself (as the BNN code does since 2023).
enum class BatchNormStats { running, batch };

// Where the hidden weights start. uniform: W_H ~ U(-init, init). thresholds: each W_H starts on a
// threshold T_j drawn uniformly among the N - 1 thresholds, displaced by U(-init, init) times the
// interval's half-width h_j: the weights begin where the interval rule does not attenuate them
// (M = 1 at a threshold), as the BNN's U(-0.05, 0.05) begins them near its threshold 0.
enum class InitMode { uniform, thresholds };

struct NetworkConfig {
  std::size_t inputs = 784;
  std::vector<std::size_t> hidden{1024, 512};
  std::size_t outputs = 10;
  // Hidden weights start uniform in [-init, init] (see InitMode).
  float init = 1.0f;
  InitMode init_mode = InitMode::uniform;
  float batchnorm_epsilon = 1e-5f;
  // Running statistics: r = (1 - momentum) r + momentum * batch statistic (PyTorch's convention;
  // the running variance uses the unbiased batch variance).
  float batchnorm_momentum = 0.1f;
  HiddenActivation activation = HiddenActivation::sign;
  // A layer whose weights are all levels of a uniform level set symmetric about 0, and whose
  // inputs are pixels (u / 255) or sign activations, gets the exact forward product of
  // app/learning/exact_product.hpp (the same bits on every machine and thread count; docs/method.md
  // 1.1); other layers (device weights, calibrated levels, other inputs) the float product.
  // exact_forward = false: the float product everywhere. exact_kernel: tests compare the kernels.
  bool exact_forward = true;
  ExactKernel exact_kernel = ExactKernel::automatic;
};

// The complete state of one BatchNorm1d layer.
struct BatchNormState {
  std::vector<float> gamma, beta, running_mean, running_var;
  bool operator==(const BatchNormState&) const = default;
};

// One fully connected layer (weights outputs x inputs, row-major) and the BatchNorm after it.
struct DenseLayer {
  std::size_t inputs = 0, outputs = 0;
  std::vector<float> hidden;     // W_H, never clipped
  std::vector<float> quantized;  // W_Q = quantizer(W_H), used by forward and backward
  std::vector<float> grad;       // dLoss/dW_Q of the last train_batch()
  BatchNormState batchnorm;
  std::vector<float> grad_gamma, grad_beta;
};

// Loss and accuracy counts of one evaluated batch.
struct BatchResult {
  double loss_sum = 0.0;  // sum over the batch of the cross-entropy (nats)
  std::size_t correct = 0;
  std::size_t count = 0;
};

class Network {
 public:
  // max_batch: the largest batch train_batch()/evaluate_batch() will see (buffers are sized for
  // it). Throws std::invalid_argument on empty layers or max_batch < 1.
  Network(NetworkConfig config, Quantizer quantizer, std::size_t max_batch);

  // W_H per init_mode (drawn layer by layer, row-major, from `rng`), W_Q from W_H; BatchNorm
  // gamma = 1, beta = 0, running mean 0, running variance 1.
  void initialise(std::mt19937_64& rng);

  // Forward in training mode (batch statistics; running statistics updated), backward: fills every
  // layer's grad, grad_gamma and grad_beta with the gradient of the MEAN cross-entropy. `inputs`:
  // batch x inputs floats; labels in [0, outputs). batch must be in [2, max_batch] (BatchNorm needs
  // two rows).
  BatchResult train_batch(const float* inputs, std::span<const std::uint8_t> labels);

  // Forward only, no state change. BatchNorm of layer l uses `batchnorm[l]` (running statistics
  // and affine parameters) or, with BatchNormStats::batch, the batch's own statistics and that
  // state's affine parameters. batch in [1, max_batch].
  BatchResult evaluate_batch(const float* inputs, std::span<const std::uint8_t> labels,
                             BatchNormStats stats, const std::vector<BatchNormState>& batchnorm);

  // W_Q = quantizer(W_H) for every layer (after W_H was set from outside, e.g. a checkpoint).
  void requantize();

  std::vector<DenseLayer>& layers() { return layers_; }
  const std::vector<DenseLayer>& layers() const { return layers_; }
  std::vector<BatchNormState> batchnorm_state() const;
  // Throws std::invalid_argument if the sizes do not match the network.
  void set_batchnorm_state(const std::vector<BatchNormState>& state);

  const NetworkConfig& config() const { return config_; }
  const Quantizer& quantizer() const { return quantizer_; }
  std::size_t max_batch() const { return max_batch_; }
  // The logits (last BatchNorm output, batch x outputs) of the last forward pass.
  std::span<const float> logits() const;
  // Layer l's inputs in the last forward pass (batch x layer l's inputs, row-major): the caller's
  // inputs for layer 0 (valid while they are), the previous layer's activations otherwise.
  std::span<const float> layer_inputs(std::size_t l) const;
  // Tells the network that layer l's W_Q changed, since the last forward pass, only at the listed
  // elements: the next forward pass updates the exact product's codes there instead of packing
  // the whole layer again. Optional (without it, a forward pass packs every layer); a caller
  // that uses it must report every change.
  void weights_changed(std::size_t l, std::span<const std::uint32_t> changed);
  // Whether the last forward pass computed layer l's product exactly (see NetworkConfig).
  bool forward_was_exact(std::size_t l) const { return exact_used_.at(l) != 0; }

 private:
  void forward(const float* inputs, std::size_t batch, bool training, BatchNormStats stats,
               const std::vector<BatchNormState>* batchnorm);
  BatchResult loss(std::span<const std::uint8_t> labels, bool want_gradient);
  // Layer l's product into z by ExactProduct when its inputs and weights allow it.
  bool exact_product(std::size_t l, const float* inputs, std::size_t batch, float* z);
  void activate(std::size_t l, const float* y, std::size_t batch);

  NetworkConfig config_;
  Quantizer quantizer_;
  std::size_t max_batch_;
  std::size_t batch_ = 0;
  std::vector<DenseLayer> layers_;
  // Per layer, batch-sized buffers: normalised pre-activations x_hat, BatchNorm outputs y, and
  // (hidden layers) the activations fed to the next layer.
  std::vector<std::vector<float>> xhat_, bn_out_, activation_;
  std::vector<std::vector<float>> inv_std_;  // per layer, per feature, of the last forward pass
  std::vector<float> grad_out_, grad_in_;    // backward scratch (batch x widest layer)
  std::vector<float> column_a_, column_b_;   // per-feature reductions
  const float* last_inputs_ = nullptr;
  // Exact products, per layer (empty when the levels do not allow them): the packed weights, the
  // layer's inputs on the integer grid (batch x padded inputs) and whether the last pass used it.
  std::vector<ExactProduct> exact_;
  std::vector<std::vector<std::uint8_t>> grid_;
  std::vector<char> exact_used_;
  std::vector<char> codes_valid_;  // the last pack (and the updates since) of layer l succeeded
  std::vector<char> tracked_;      // every change since the last forward pass was reported
};

}  // namespace metaplast::learning
