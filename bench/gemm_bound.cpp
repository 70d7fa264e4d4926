// The GEMM-only bound of one training epoch of the default network (784-1024-512-10, batch 100):
// exactly the matrix products of a training step, and nothing else, with float32 OpenBLAS sgemm.
// Per step: forward 3 (X W^T), weight gradients 3 (G^T X), input gradients 2 (G W; none for the
// first layer, whose input is the data). No training happens; the figure is the samples/s a
// trainer could reach if everything but these products cost nothing.
//
//   usage: bench_gemm_bound [--threads N] [--steps S] [--batch B]   (defaults 2, 600, 100)
// Prints one JSON line: {"samples_per_second": ..., "seconds": ..., ...}.
#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Options {
  int threads = 2;
  int steps = 600;
  int batch = 100;
};

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + arg);
    const int value = std::stoi(argv[++i]);
    if (value <= 0) throw std::invalid_argument(arg + " must be positive");
    if (arg == "--threads") {
      options.threads = value;
    } else if (arg == "--steps") {
      options.steps = value;
    } else if (arg == "--batch") {
      options.batch = value;
    } else {
      throw std::invalid_argument("unknown option " + arg +
                                  " (known: --threads N, --steps S, --batch B)");
    }
  }
  return options;
}

std::vector<float> random_matrix(std::size_t size, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> m(size);
  for (float& x : m) x = uniform(rng);
  return m;
}

// C (m x n) = op(A) op(B), row-major.
void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, const float* a, const float* b,
          float* c) {
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, transpose_a ? m : k, b,
              transpose_b ? k : n, 0.0f, c, n);
}

}  // namespace

int main(int argc, char** argv) try {
  const Options options = parse(argc, argv);
  openblas_set_num_threads(options.threads);
  const int sizes[] = {784, 1024, 512, 10};
  constexpr int kLayers = 3;
  const int batch = options.batch;

  std::mt19937 rng(1);
  std::vector<std::vector<float>> weights, weight_grads, activations, grads;
  activations.push_back(random_matrix(std::size_t(batch) * sizes[0], rng));
  for (int l = 0; l < kLayers; ++l) {
    weights.push_back(random_matrix(std::size_t(sizes[l + 1]) * sizes[l], rng));  // out x in
    weight_grads.emplace_back(std::size_t(sizes[l + 1]) * sizes[l]);
    activations.emplace_back(std::size_t(batch) * sizes[l + 1]);
    grads.push_back(random_matrix(std::size_t(batch) * sizes[l + 1], rng));  // dL/d(output of l)
  }
  std::vector<std::vector<float>> input_grads;
  for (int l = 0; l < kLayers; ++l) input_grads.emplace_back(std::size_t(batch) * sizes[l]);

  auto step = [&] {
    for (int l = 0; l < kLayers; ++l) {  // forward: A_{l+1} = A_l W_l^T
      gemm(false, true, batch, sizes[l + 1], sizes[l], activations[l].data(), weights[l].data(),
           activations[l + 1].data());
    }
    for (int l = kLayers - 1; l >= 0; --l) {
      // weight gradient: dW_l = G_l^T A_l
      gemm(true, false, sizes[l + 1], sizes[l], batch, grads[l].data(), activations[l].data(),
           weight_grads[l].data());
      // input gradient: dA_l = G_l W_l, not needed for the data
      if (l > 0) {
        gemm(false, false, batch, sizes[l], sizes[l + 1], grads[l].data(), weights[l].data(),
             input_grads[l].data());
      }
    }
  };

  for (int s = 0; s < 10; ++s) step();  // warm-up: thread pool and caches
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < options.steps; ++s) step();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double samples = double(options.steps) * batch;
  std::printf(
      "{\"samples_per_second\": %.1f, \"seconds\": %.4f, \"steps\": %d, \"batch\": %d, "
      "\"threads\": %d}\n",
      samples / seconds, seconds, options.steps, batch, options.threads);
  return 0;
} catch (const std::exception& error) {
  std::fprintf(stderr, "bench_gemm_bound: %s\n", error.what());
  return 2;
}
