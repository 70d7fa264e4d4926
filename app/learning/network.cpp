#include "app/learning/network.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "app/util/thread_pool.hpp"

namespace metaplast::learning {

namespace {

// The matrix products run as single-threaded OpenBLAS calls, one per range of output columns
// (or rows) on the hot-path pool (app/util/thread_pool.hpp): OpenBLAS's own threads busy-wait
// between calls and slowed down everything else in a training step.
void single_threaded_blas() {
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

// Products narrower than this are not worth splitting.
constexpr std::size_t kMinSplit = 64;

int split_threads(std::size_t extent) {
  return extent >= 2 * kMinSplit ? util::compute_threads() : 1;
}

// Row-major C (m x n) = A (m x k) * B^T, B stored n x k: the forward product x W^T.
// Split over the columns of C (rows of B).
void gemm_a_bt(std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b,
               float* c) {
  single_threaded_blas();
  util::parallel_ranges(n, split_threads(n), [&](std::size_t begin, std::size_t end) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                static_cast<int>(end - begin), static_cast<int>(k), 1.0f, a, static_cast<int>(k),
                b + begin * k, static_cast<int>(k), 0.0f, c + begin, static_cast<int>(n));
  });
}

// C (m x n) = A^T B with A stored k x m, B k x n: the weight gradient dz^T x.
// Split over the rows of C (columns of A).
void gemm_at_b(std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b,
               float* c) {
  single_threaded_blas();
  util::parallel_ranges(m, split_threads(m), [&](std::size_t begin, std::size_t end) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(end - begin),
                static_cast<int>(n), static_cast<int>(k), 1.0f, a + begin, static_cast<int>(m), b,
                static_cast<int>(n), 0.0f, c + begin * n, static_cast<int>(n));
  });
}

// C (m x n) = A (m x k) B (k x n): the input gradient dz W. Split over the columns of C and B.
void gemm_a_b(std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b,
              float* c) {
  single_threaded_blas();
  util::parallel_ranges(n, split_threads(n), [&](std::size_t begin, std::size_t end) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m),
                static_cast<int>(end - begin), static_cast<int>(k), 1.0f, a, static_cast<int>(k),
                b + begin, static_cast<int>(n), 0.0f, c + begin, static_cast<int>(n));
  });
}

void check_state_sizes(const BatchNormState& s, std::size_t n, std::size_t layer) {
  if (s.gamma.size() != n || s.beta.size() != n || s.running_mean.size() != n ||
      s.running_var.size() != n) {
    throw std::invalid_argument("network: BatchNorm state of layer " + std::to_string(layer) +
                                " does not have " + std::to_string(n) + " features");
  }
}

}  // namespace

Network::Network(NetworkConfig config, Quantizer quantizer, std::size_t max_batch)
    : config_(std::move(config)), quantizer_(std::move(quantizer)), max_batch_(max_batch) {
  if (max_batch_ < 1) throw std::invalid_argument("network: max_batch must be >= 1");
  std::vector<std::size_t> sizes{config_.inputs};
  sizes.insert(sizes.end(), config_.hidden.begin(), config_.hidden.end());
  sizes.push_back(config_.outputs);
  std::size_t widest = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) {
      throw std::invalid_argument("network: layer " + std::to_string(i) + " has no units");
    }
    widest = std::max(widest, sizes[i]);
  }
  if (config_.outputs < 2) throw std::invalid_argument("network: need at least 2 outputs");
  const std::size_t count = sizes.size() - 1;
  layers_.resize(count);
  xhat_.resize(count);
  bn_out_.resize(count);
  activation_.resize(count);
  inv_std_.resize(count);
  for (std::size_t l = 0; l < count; ++l) {
    DenseLayer& layer = layers_[l];
    layer.inputs = sizes[l];
    layer.outputs = sizes[l + 1];
    const std::size_t weights = layer.inputs * layer.outputs;
    layer.hidden.assign(weights, 0.0f);
    layer.quantized.assign(weights, 0.0f);
    layer.grad.assign(weights, 0.0f);
    layer.batchnorm.gamma.assign(layer.outputs, 1.0f);
    layer.batchnorm.beta.assign(layer.outputs, 0.0f);
    layer.batchnorm.running_mean.assign(layer.outputs, 0.0f);
    layer.batchnorm.running_var.assign(layer.outputs, 1.0f);
    layer.grad_gamma.assign(layer.outputs, 0.0f);
    layer.grad_beta.assign(layer.outputs, 0.0f);
    xhat_[l].assign(max_batch_ * layer.outputs, 0.0f);
    bn_out_[l].assign(max_batch_ * layer.outputs, 0.0f);
    if (l + 1 < count) activation_[l].assign(max_batch_ * layer.outputs, 0.0f);
    inv_std_[l].assign(layer.outputs, 0.0f);
  }
  grad_out_.assign(max_batch_ * widest, 0.0f);
  grad_in_.assign(max_batch_ * widest, 0.0f);
  column_a_.assign(widest, 0.0f);
  column_b_.assign(widest, 0.0f);
  exact_used_.assign(count, 0);
  codes_valid_.assign(count, 0);
  tracked_.assign(count, 0);
  const auto codes = config_.exact_forward ? level_codes(quantizer_) : std::nullopt;
  if (codes) {
    exact_.reserve(count);
    for (std::size_t l = 0; l < count; ++l) {
      exact_.emplace_back(layers_[l].outputs, layers_[l].inputs, *codes, config_.exact_kernel);
      grid_.emplace_back(max_batch_ * ExactProduct::padded_inputs(layers_[l].inputs), 0);
    }
  }
  requantize();
}

void Network::initialise(std::mt19937_64& rng) {
  const float init = config_.init;
  const std::size_t intervals = quantizer_.size() - 1;
  for (DenseLayer& layer : layers_) {
    for (float& w : layer.hidden) {
      // 24 random bits: u uniform on [0, 1) exactly representable in float.
      const float u = static_cast<float>(rng() >> 40) * 0x1.0p-24f;
      if (config_.init_mode == InitMode::uniform) {
        w = init * (2.0f * u - 1.0f);
      } else {
        const std::size_t j = static_cast<std::size_t>(rng() % intervals);
        w = quantizer_.threshold(j) + init * quantizer_.half_width(j) * (2.0f * u - 1.0f);
      }
    }
    std::fill(layer.batchnorm.gamma.begin(), layer.batchnorm.gamma.end(), 1.0f);
    std::fill(layer.batchnorm.beta.begin(), layer.batchnorm.beta.end(), 0.0f);
    std::fill(layer.batchnorm.running_mean.begin(), layer.batchnorm.running_mean.end(), 0.0f);
    std::fill(layer.batchnorm.running_var.begin(), layer.batchnorm.running_var.end(), 1.0f);
  }
  requantize();
}

void Network::requantize() {
  for (DenseLayer& layer : layers_) quantizer_.quantize(layer.hidden, layer.quantized);
}

std::vector<BatchNormState> Network::batchnorm_state() const {
  std::vector<BatchNormState> state;
  state.reserve(layers_.size());
  for (const DenseLayer& layer : layers_) state.push_back(layer.batchnorm);
  return state;
}

void Network::set_batchnorm_state(const std::vector<BatchNormState>& state) {
  if (state.size() != layers_.size()) {
    throw std::invalid_argument("network: BatchNorm state has " + std::to_string(state.size()) +
                                " layers, the network has " + std::to_string(layers_.size()));
  }
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    check_state_sizes(state[l], layers_[l].outputs, l);
    layers_[l].batchnorm = state[l];
  }
}

std::span<const float> Network::logits() const {
  return {bn_out_.back().data(), batch_ * config_.outputs};
}

std::span<const float> Network::layer_inputs(std::size_t l) const {
  const DenseLayer& layer = layers_.at(l);
  return {l == 0 ? last_inputs_ : activation_[l - 1].data(), batch_ * layer.inputs};
}

void Network::forward(const float* inputs, std::size_t batch, bool training, BatchNormStats stats,
                      const std::vector<BatchNormState>* batchnorm) {
  batch_ = batch;
  last_inputs_ = inputs;
  const float inv_batch = 1.0f / static_cast<float>(batch);
  const float momentum = config_.batchnorm_momentum;
  const float eps = config_.batchnorm_epsilon;
  const float* a = inputs;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    DenseLayer& layer = layers_[l];
    const std::size_t out = layer.outputs;
    float* z = xhat_[l].data();
    exact_used_[l] = !exact_.empty() && exact_product(l, a, batch, z);
    tracked_[l] = 0;
    if (!exact_used_[l]) gemm_a_bt(batch, out, layer.inputs, a, layer.quantized.data(), z);

    const BatchNormState& state = training ? layer.batchnorm : (*batchnorm)[l];
    float* mean = column_a_.data();
    float* inv_std = inv_std_[l].data();
    if (training || stats == BatchNormStats::batch) {
      float* var = column_b_.data();
      std::fill(mean, mean + out, 0.0f);
      std::fill(var, var + out, 0.0f);
      for (std::size_t b = 0; b < batch; ++b) {
        const float* row = z + b * out;
        for (std::size_t f = 0; f < out; ++f) mean[f] += row[f];
      }
      for (std::size_t f = 0; f < out; ++f) mean[f] *= inv_batch;
      for (std::size_t b = 0; b < batch; ++b) {
        const float* row = z + b * out;
        for (std::size_t f = 0; f < out; ++f) {
          const float d = row[f] - mean[f];
          var[f] += d * d;
        }
      }
      for (std::size_t f = 0; f < out; ++f) {
        var[f] *= inv_batch;  // biased variance normalises, as PyTorch
        inv_std[f] = 1.0f / std::sqrt(var[f] + eps);
      }
      if (training) {
        const float unbiased = static_cast<float>(batch) / static_cast<float>(batch - 1);
        float* rm = layer.batchnorm.running_mean.data();
        float* rv = layer.batchnorm.running_var.data();
        for (std::size_t f = 0; f < out; ++f) {
          rm[f] = (1.0f - momentum) * rm[f] + momentum * mean[f];
          rv[f] = (1.0f - momentum) * rv[f] + momentum * var[f] * unbiased;
        }
      }
    } else {
      for (std::size_t f = 0; f < out; ++f) {
        mean[f] = state.running_mean[f];
        inv_std[f] = 1.0f / std::sqrt(state.running_var[f] + eps);
      }
    }
    const float* gamma = state.gamma.data();
    const float* beta = state.beta.data();
    float* y = bn_out_[l].data();
    for (std::size_t b = 0; b < batch; ++b) {
      float* zr = z + b * out;
      float* yr = y + b * out;
      for (std::size_t f = 0; f < out; ++f) {
        const float xh = (zr[f] - mean[f]) * inv_std[f];
        zr[f] = xh;
        yr[f] = gamma[f] * xh + beta[f];
      }
    }
    if (l + 1 < layers_.size()) {
      activate(l, y, batch);
      a = activation_[l].data();
    }
  }
}

void Network::activate(std::size_t l, const float* y, std::size_t batch) {
  float* act = activation_[l].data();
  const std::size_t out = layers_[l].outputs;
  const std::size_t n = batch * out;
  if (config_.activation == HiddenActivation::hardtanh) {
    for (std::size_t i = 0; i < n; ++i) act[i] = std::clamp(y[i], -1.0f, 1.0f);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) act[i] = y[i] > 0.0f ? 1.0f : (y[i] < 0.0f ? -1.0f : 0.0f);
  if (exact_.empty()) return;
  // The next layer's inputs on the grid: 1 + sign, in [0, 2].
  const std::size_t stride = ExactProduct::padded_inputs(out);
  for (std::size_t b = 0; b < batch; ++b) {
    const float* ar = act + b * out;
    std::uint8_t* u = grid_[l + 1].data() + b * stride;
    for (std::size_t f = 0; f < out; ++f) u[f] = static_cast<std::uint8_t>(1.0f + ar[f]);
  }
}

bool Network::exact_product(std::size_t l, const float* inputs, std::size_t batch, float* z) {
  const DenseLayer& layer = layers_[l];
  GridInputs in;
  in.values = grid_[l].data();
  in.rows = batch;
  in.stride = ExactProduct::padded_inputs(layer.inputs);
  if (l == 0) {
    if (!pixels_to_grid(inputs, batch, layer.inputs, grid_[0].data())) return false;
    in.offset = 0;
    in.step = 1.0f / 255.0f;
    in.max_abs = 255;
  } else {
    if (config_.activation != HiddenActivation::sign) return false;
    in.offset = 1;
    in.step = 1.0f;
    in.max_abs = 1;
  }
  ExactProduct& product = exact_[l];
  if (!product.fits(in.max_abs)) return false;
  if (!(codes_valid_[l] && tracked_[l])) codes_valid_[l] = product.pack(layer.quantized);
  if (!codes_valid_[l]) return false;
  product.multiply(in, z);
  return true;
}

void Network::weights_changed(std::size_t l, std::span<const std::uint32_t> changed) {
  if (exact_.empty() || !codes_valid_.at(l)) return;
  codes_valid_[l] = exact_[l].update(layers_[l].quantized, changed);
  tracked_[l] = codes_valid_[l];
}

BatchResult Network::loss(std::span<const std::uint8_t> labels, bool want_gradient) {
  const std::size_t classes = config_.outputs;
  const float* logits = bn_out_.back().data();
  float* grad = grad_out_.data();
  const float inv_batch = 1.0f / static_cast<float>(batch_);
  BatchResult result;
  result.count = batch_;
  for (std::size_t b = 0; b < batch_; ++b) {
    const float* row = logits + b * classes;
    const std::size_t label = labels[b];
    std::size_t best = 0;
    for (std::size_t c = 1; c < classes; ++c) {
      if (row[c] > row[best]) best = c;
    }
    const float max = row[best];
    float sum = 0.0f;
    for (std::size_t c = 0; c < classes; ++c) sum += std::exp(row[c] - max);
    const float log_sum = std::log(sum);
    result.loss_sum += static_cast<double>(log_sum - (row[label] - max));
    if (best == label) ++result.correct;
    if (want_gradient) {
      float* g = grad + b * classes;
      const float inv_sum = 1.0f / sum;
      for (std::size_t c = 0; c < classes; ++c) {
        g[c] = std::exp(row[c] - max) * inv_sum * inv_batch;
      }
      g[label] -= inv_batch;
    }
  }
  return result;
}

BatchResult Network::train_batch(const float* inputs, std::span<const std::uint8_t> labels) {
  const std::size_t batch = labels.size();
  if (batch < 2 || batch > max_batch_) {
    throw std::invalid_argument("network: training batch of " + std::to_string(batch) +
                                " rows, need 2.." + std::to_string(max_batch_));
  }
  forward(inputs, batch, true, BatchNormStats::batch, nullptr);
  const BatchResult result = loss(labels, true);

  const float inv_batch = 1.0f / static_cast<float>(batch);
  const float fbatch = static_cast<float>(batch);
  for (std::size_t l = layers_.size(); l-- > 0;) {
    DenseLayer& layer = layers_[l];
    const std::size_t out = layer.outputs;
    float* dy = grad_out_.data();  // dLoss/dy for this layer's BatchNorm output, batch x out
    const float* xhat = xhat_[l].data();
    float* dgamma = layer.grad_gamma.data();
    float* dbeta = layer.grad_beta.data();
    std::fill(dgamma, dgamma + out, 0.0f);
    std::fill(dbeta, dbeta + out, 0.0f);
    for (std::size_t b = 0; b < batch; ++b) {
      const float* dyr = dy + b * out;
      const float* xr = xhat + b * out;
      for (std::size_t f = 0; f < out; ++f) {
        dgamma[f] += dyr[f] * xr[f];
        dbeta[f] += dyr[f];
      }
    }
    // dz = gamma * inv_std / B * (B dy - sum(dy) - x_hat sum(dy x_hat)), in place over dy.
    float* scale = column_a_.data();
    const float* gamma = layer.batchnorm.gamma.data();
    const float* inv_std = inv_std_[l].data();
    for (std::size_t f = 0; f < out; ++f) scale[f] = gamma[f] * inv_std[f] * inv_batch;
    for (std::size_t b = 0; b < batch; ++b) {
      float* dyr = dy + b * out;
      const float* xr = xhat + b * out;
      for (std::size_t f = 0; f < out; ++f) {
        dyr[f] = scale[f] * (fbatch * dyr[f] - dbeta[f] - xr[f] * dgamma[f]);
      }
    }
    const float* a_in = l == 0 ? last_inputs_ : activation_[l - 1].data();
    gemm_at_b(out, layer.inputs, batch, dy, a_in, layer.grad.data());
    if (l == 0) break;  // no gradient for the input pixels
    float* da = grad_in_.data();
    gemm_a_b(batch, layer.inputs, out, dy, layer.quantized.data(), da);
    // Straight-through: the gradient passes where the BatchNorm output below is in [-1, 1].
    const float* y_below = bn_out_[l - 1].data();
    const std::size_t n = batch * layer.inputs;
    for (std::size_t i = 0; i < n; ++i) da[i] = std::abs(y_below[i]) <= 1.0f ? da[i] : 0.0f;
    std::swap(grad_out_, grad_in_);
  }
  return result;
}

BatchResult Network::evaluate_batch(const float* inputs, std::span<const std::uint8_t> labels,
                                    BatchNormStats stats,
                                    const std::vector<BatchNormState>& batchnorm) {
  const std::size_t batch = labels.size();
  if (batch < 1 || batch > max_batch_) {
    throw std::invalid_argument("network: evaluation batch of " + std::to_string(batch) +
                                " rows, need 1.." + std::to_string(max_batch_));
  }
  if (batchnorm.size() != layers_.size()) {
    throw std::invalid_argument("network: evaluation needs one BatchNorm state per layer");
  }
  forward(inputs, batch, false, stats, &batchnorm);
  return loss(labels, false);
}

}  // namespace metaplast::learning
