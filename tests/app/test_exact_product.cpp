// Exact forward products: the level codes, the pixel grid, both kernels against an integer
// reference bit for bit, refusal of weights that are not levels, and the network choosing them.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "app/learning/exact_product.hpp"
#include "app/learning/network.hpp"
#include "app/util/thread_pool.hpp"

using namespace metaplast::learning;

namespace {

std::vector<ExactKernel> kernels() {
  std::vector<ExactKernel> k{ExactKernel::float_sgemm};
  if (vnni_built()) k.push_back(ExactKernel::vnni);
  return k;
}

// Weights drawn among the levels, and their codes.
struct RandomLayer {
  std::vector<float> weights;
  std::vector<int> codes;
};

RandomLayer random_layer(std::size_t outputs, std::size_t inputs, const LevelCodes& codes,
                         std::mt19937& rng) {
  std::uniform_int_distribution<int> level(0, codes.max_code);
  RandomLayer layer;
  for (std::size_t i = 0; i < outputs * inputs; ++i) {
    const int l = level(rng);
    layer.weights.push_back(codes.levels[static_cast<std::size_t>(l)]);
    layer.codes.push_back(2 * l - codes.max_code);
  }
  return layer;
}

// The definition: float(exact integer sum) * (input step * code step).
std::vector<float> reference(const RandomLayer& layer, const std::vector<std::uint8_t>& u,
                             std::size_t rows, std::size_t outputs, std::size_t inputs,
                             std::size_t stride, int offset, float step, float code_step) {
  std::vector<float> c(rows * outputs);
  const float scale = step * code_step;
  for (std::size_t b = 0; b < rows; ++b) {
    for (std::size_t o = 0; o < outputs; ++o) {
      std::int64_t sum = 0;
      for (std::size_t j = 0; j < inputs; ++j) {
        sum += std::int64_t{u[b * stride + j] - offset} * layer.codes[o * inputs + j];
      }
      c[b * outputs + o] = static_cast<float>(sum) * scale;
    }
  }
  return c;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("level codes exist for uniform level sets symmetric about 0, to the last bit",
          "[exact]") {
  const auto four = level_codes(Quantizer::uniform(4));
  REQUIRE(four);
  CHECK(four->max_code == 3);
  CHECK(four->step == 1.0f / 3.0f);
  const auto nine = level_codes(Quantizer::uniform(9));
  REQUIRE(nine);
  CHECK(nine->max_code == 8);
  CHECK(nine->step == 0.125f);
  for (const std::size_t n : {2u, 3u, 5u, 17u}) CHECK(level_codes(Quantizer::uniform(n)));
  CHECK(level_codes(Quantizer::uniform(128, -127.0f, 127.0f)));     // odd integers, step 1
  CHECK_FALSE(level_codes(Quantizer::uniform(129)));                // codes beyond 8 bits
  CHECK_FALSE(level_codes(Quantizer::uniform(4, 0.0f, 1.0f)));      // not symmetric about 0
  CHECK_FALSE(level_codes(Quantizer({-1.0f, -0.2f, 0.5f, 1.0f})));  // calibrated, unequal
  // One level one ulp off the grid.
  std::vector<float> levels{-1.0f, -1.0f / 3.0f, 1.0f / 3.0f, 1.0f};
  levels[2] = std::nextafter(levels[2], 1.0f);
  CHECK_FALSE(level_codes(Quantizer(levels)));
}

TEST_CASE("pixels are taken on the grid only when every value is u / 255", "[exact]") {
  for (const std::size_t inputs : {1u, 13u, 16u, 17u, 256u, 785u}) {
    const std::size_t stride = ExactProduct::padded_inputs(inputs);
    CHECK(stride % 4 == 0);
    CHECK(stride >= inputs);
    std::vector<float> x(2 * inputs);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 256) / 255.0f;
    std::vector<std::uint8_t> u(2 * stride, 0);
    REQUIRE(pixels_to_grid(x.data(), 2, inputs, u.data()));
    for (std::size_t b = 0; b < 2; ++b) {
      for (std::size_t j = 0; j < inputs; ++j) {
        REQUIRE(u[b * stride + j] == (b * inputs + j) % 256);
      }
      for (std::size_t j = inputs; j < stride; ++j) REQUIRE(u[b * stride + j] == 0);
    }
    for (const float bad :
         {0.5f, -1.0f / 255.0f, 256.0f / 255.0f, std::nextafter(1.0f / 255.0f, 1.0f),
          std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      std::vector<float> y = x;
      y[y.size() - 1] = bad;  // the last value, in the tail
      CHECK_FALSE(pixels_to_grid(y.data(), 2, inputs, u.data()));
      y = x;
      y[0] = bad;
      CHECK_FALSE(pixels_to_grid(y.data(), 2, inputs, u.data()));
    }
  }
}

TEST_CASE("both kernels give the integer reference bit for bit, at any size and thread count",
          "[exact]") {
  std::mt19937 rng(3);
  for (const std::size_t count : {4u, 9u, 2u, 40u}) {
    const LevelCodes codes = *level_codes(Quantizer::uniform(count));
    for (const auto& [outputs, inputs, rows] :
         std::vector<std::tuple<std::size_t, std::size_t, std::size_t>>{
             {1, 1, 1}, {10, 13, 7}, {16, 64, 6}, {17, 3, 13}, {70, 785, 11}, {130, 512, 100}}) {
      const RandomLayer layer = random_layer(outputs, inputs, codes, rng);
      const std::size_t stride = ExactProduct::padded_inputs(inputs);
      for (const int offset : {0, 1}) {
        // Pixels (offset 0, u in [0, 255]) or 1 + sign (offset 1, u in [0, 2]).
        std::uniform_int_distribution<int> value(0, offset == 0 ? 255 : 2);
        std::vector<std::uint8_t> u(rows * stride, 0);
        for (std::size_t b = 0; b < rows; ++b) {
          for (std::size_t j = 0; j < inputs; ++j) {
            u[b * stride + j] = static_cast<std::uint8_t>(value(rng));
          }
        }
        const GridInputs in{u.data(),
                            rows,
                            stride,
                            offset,
                            offset == 0 ? 1.0f / 255.0f : 1.0f,
                            offset == 0 ? 255 : 1};
        const auto expected =
            reference(layer, u, rows, outputs, inputs, stride, offset, in.step, codes.step);
        for (const ExactKernel kernel : kernels()) {
          for (const int threads : {1, 2}) {
            metaplast::util::set_compute_threads(threads);
            ExactProduct product(outputs, inputs, codes, kernel);
            if (!product.fits(in.max_abs)) continue;  // 40 levels x 785 pixels
            REQUIRE(product.pack(layer.weights));
            std::vector<float> c(rows * outputs, -7.0f);
            product.multiply(in, c.data());
            INFO("levels " << count << ", " << outputs << " x " << inputs << ", rows " << rows
                           << ", offset " << offset << ", threads " << threads << ", kernel "
                           << static_cast<int>(kernel));
            REQUIRE(same_bits(c, expected));
          }
        }
      }
    }
  }
  metaplast::util::set_compute_threads(1);
}

TEST_CASE("a weight that is not a level makes pack refuse the layer", "[exact]") {
  std::mt19937 rng(5);
  const LevelCodes codes = *level_codes(Quantizer::uniform(4));
  const std::size_t outputs = 40, inputs = 50;
  const RandomLayer layer = random_layer(outputs, inputs, codes, rng);
  for (const ExactKernel kernel : kernels()) {
    ExactProduct product(outputs, inputs, codes, kernel);
    REQUIRE(product.pack(layer.weights));
    for (const std::size_t at : {std::size_t{0}, std::size_t{777}, outputs * inputs - 1}) {
      for (const float bad :
           {std::nextafter(layer.weights[at], 2.0f), 0.0f, 0.5f, 3.0f, -3.0f,
            std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        std::vector<float> w = layer.weights;
        w[at] = bad;
        CHECK_FALSE(product.pack(w));
      }
    }
    CHECK_THROWS_AS(product.pack(std::vector<float>(3, 1.0f)), std::invalid_argument);
  }
  CHECK(ExactProduct(1024, 784, codes).fits(255));
  CHECK_FALSE(
      ExactProduct(1024, 784, *level_codes(Quantizer::uniform(128, -127.0f, 127.0f))).fits(255));
}

namespace {

struct NetFixture {
  Network network;
  std::vector<float> inputs;
  std::vector<std::uint8_t> labels;

  NetFixture(bool exact, ExactKernel kernel, std::size_t batch = 20,
             HiddenActivation activation = HiddenActivation::sign)
      : network(config(exact, kernel, activation), Quantizer::uniform(4), batch) {
    std::mt19937_64 init(11);
    network.initialise(init);
    std::mt19937 rng(12);
    std::uniform_int_distribution<int> pixel(0, 255), label(0, 9);
    for (std::size_t i = 0; i < batch * 64; ++i) {
      inputs.push_back(static_cast<float>(pixel(rng)) / 255.0f);
    }
    for (std::size_t b = 0; b < batch; ++b) labels.push_back(static_cast<std::uint8_t>(label(rng)));
  }

  static NetworkConfig config(bool exact, ExactKernel kernel, HiddenActivation activation) {
    NetworkConfig c;
    c.inputs = 64;
    c.hidden = {48, 33};
    c.outputs = 10;
    c.exact_forward = exact;
    c.exact_kernel = kernel;
    c.activation = activation;
    return c;
  }

  std::vector<float> logits() const { return {network.logits().begin(), network.logits().end()}; }
};

}  // namespace

TEST_CASE("the network takes the exact product where weights and inputs allow it", "[exact]") {
  NetFixture plain(false, ExactKernel::automatic);
  plain.network.train_batch(plain.inputs.data(), plain.labels);
  std::vector<std::vector<float>> results;
  for (const ExactKernel kernel : kernels()) {
    for (const int threads : {1, 2}) {
      metaplast::util::set_compute_threads(threads);
      NetFixture f(true, kernel);
      f.network.train_batch(f.inputs.data(), f.labels);
      for (std::size_t l = 0; l < 3; ++l) CHECK(f.network.forward_was_exact(l));
      results.push_back(f.logits());
      // The same products to float rounding: the logits of the float product agree closely.
      const auto a = f.logits(), b = plain.logits();
      for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(b[i]).margin(1e-4));
    }
  }
  metaplast::util::set_compute_threads(1);
  for (const auto& r : results) CHECK(same_bits(r, results.front()));
  for (std::size_t l = 0; l < 3; ++l) CHECK_FALSE(plain.network.forward_was_exact(l));

  SECTION("a device weight (not a level) sends its layer to the float product") {
    NetFixture f(true, ExactKernel::automatic);
    f.network.layers()[1].quantized[5] = 0.3f;
    f.network.train_batch(f.inputs.data(), f.labels);
    CHECK(f.network.forward_was_exact(0));
    CHECK_FALSE(f.network.forward_was_exact(1));
    CHECK(f.network.forward_was_exact(2));
  }
  SECTION("inputs off the pixel grid send the first layer to the float product") {
    NetFixture f(true, ExactKernel::automatic);
    f.inputs[100] = 0.3f;
    f.network.train_batch(f.inputs.data(), f.labels);
    CHECK_FALSE(f.network.forward_was_exact(0));
    CHECK(f.network.forward_was_exact(1));
  }
  SECTION("hardtanh activations send the hidden layers' products to the float product") {
    NetFixture f(true, ExactKernel::automatic, 20, HiddenActivation::hardtanh);
    f.network.train_batch(f.inputs.data(), f.labels);
    CHECK(f.network.forward_was_exact(0));
    CHECK_FALSE(f.network.forward_was_exact(1));
    CHECK_FALSE(f.network.forward_was_exact(2));
  }
  SECTION("evaluation uses it too, with the same result on either kernel") {
    std::vector<std::vector<float>> evaluated;
    for (const ExactKernel kernel : kernels()) {
      NetFixture f(true, kernel);
      f.network.evaluate_batch(f.inputs.data(), f.labels, BatchNormStats::running,
                               f.network.batchnorm_state());
      CHECK(f.network.forward_was_exact(0));
      evaluated.push_back(f.logits());
    }
    for (const auto& r : evaluated) CHECK(same_bits(r, evaluated.front()));
  }
}

TEST_CASE("updating the listed weights gives what packing the whole layer gives", "[exact]") {
  std::mt19937 rng(9);
  const LevelCodes codes = *level_codes(Quantizer::uniform(9));
  const std::size_t outputs = 37, inputs = 70, rows = 9;
  const std::size_t stride = ExactProduct::padded_inputs(inputs);
  RandomLayer layer = random_layer(outputs, inputs, codes, rng);
  std::vector<std::uint8_t> u(rows * stride, 0);
  std::uniform_int_distribution<int> value(0, 2);
  for (std::size_t b = 0; b < rows; ++b) {
    for (std::size_t j = 0; j < inputs; ++j)
      u[b * stride + j] = static_cast<std::uint8_t>(value(rng));
  }
  const GridInputs in{u.data(), rows, stride, 1, 1.0f, 1};
  for (const ExactKernel kernel : kernels()) {
    ExactProduct updated(outputs, inputs, codes, kernel), packed(outputs, inputs, codes, kernel);
    REQUIRE(updated.pack(layer.weights));
    std::uniform_int_distribution<std::uint32_t> index(0, outputs * inputs - 1);
    std::uniform_int_distribution<int> level(0, codes.max_code);
    for (int step = 0; step < 5; ++step) {
      std::vector<std::uint32_t> changed;
      for (int n = 0; n < 200; ++n) changed.push_back(index(rng));
      std::sort(changed.begin(), changed.end());
      changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
      for (const std::uint32_t k : changed) {
        const int l = level(rng);
        layer.weights[k] = codes.levels[static_cast<std::size_t>(l)];
        layer.codes[k] = 2 * l - codes.max_code;
      }
      REQUIRE(updated.update(layer.weights, changed));
      REQUIRE(packed.pack(layer.weights));
      std::vector<float> a(rows * outputs), b(rows * outputs);
      updated.multiply(in, a.data());
      packed.multiply(in, b.data());
      REQUIRE(same_bits(a, b));
      REQUIRE(
          same_bits(a, reference(layer, u, rows, outputs, inputs, stride, 1, 1.0f, codes.step)));
    }
    std::vector<float> w = layer.weights;
    w[5] = 0.3f;
    const std::uint32_t five = 5;
    CHECK_FALSE(updated.update(w, {&five, 1}));
    const std::uint32_t outside = static_cast<std::uint32_t>(outputs * inputs);
    CHECK_THROWS_AS(updated.update(w, {&outside, 1}), std::invalid_argument);
  }
}

TEST_CASE("a network told every change computes what it computes packing every layer", "[exact]") {
  NetFixture told(true, ExactKernel::automatic), untold(true, ExactKernel::automatic);
  std::mt19937 rng(21);
  for (int step = 0; step < 4; ++step) {
    told.network.train_batch(told.inputs.data(), told.labels);
    untold.network.train_batch(untold.inputs.data(), untold.labels);
    REQUIRE(same_bits(told.logits(), untold.logits()));
    // A step's changes: some weights move to another level.
    for (std::size_t l = 0; l < 3; ++l) {
      auto& a = told.network.layers()[l].quantized;
      auto& b = untold.network.layers()[l].quantized;
      std::uniform_int_distribution<std::uint32_t> index(0,
                                                         static_cast<std::uint32_t>(a.size() - 1));
      std::vector<std::uint32_t> changed;
      for (int n = 0; n < 40; ++n) changed.push_back(index(rng));
      std::sort(changed.begin(), changed.end());
      changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
      for (const std::uint32_t k : changed) a[k] = b[k] = -a[k];  // symmetric levels
      told.network.weights_changed(l, changed);
    }
  }
  // A device weight reported as a change sends the layer to the float product, as a full pack does.
  told.network.layers()[1].quantized[3] = 0.3f;
  untold.network.layers()[1].quantized[3] = 0.3f;
  const std::uint32_t three = 3;
  told.network.weights_changed(1, {&three, 1});
  told.network.train_batch(told.inputs.data(), told.labels);
  untold.network.train_batch(untold.inputs.data(), untold.labels);
  CHECK_FALSE(told.network.forward_was_exact(1));
  CHECK(same_bits(told.logits(), untold.logits()));
}
