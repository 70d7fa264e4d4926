// Gradient projection (docs/method.md 5.1): the protected directions a task's inputs give each
// layer, the projected step that leaves the layer's outputs on them unchanged, the feedback of the
// quantized weights' drift, and the protected spaces through a checkpoint.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/gradient_projection.hpp"
#include "app/learning/network.hpp"
#include "app/learning/trainer.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/stopped_run.hpp"

using namespace metaplast::learning;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kInputs = 8, kHidden = 5, kOutputs = 3, kBatch = 40;

Network small_network() {
  NetworkConfig config;
  config.inputs = kInputs;
  config.hidden = {kHidden};
  config.outputs = kOutputs;
  config.exact_forward = false;
  Network network(config, Quantizer::uniform(9), kBatch);
  std::mt19937_64 rng(7);
  network.initialise(rng);
  return network;
}

// kBatch rows, each a random combination of the given directions (row-major, kBatch x kInputs).
std::vector<float> inputs_in(const std::vector<std::vector<float>>& directions,
                             const std::vector<float>& scales, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> x(kBatch * kInputs, 0.0f);
  for (std::size_t r = 0; r < kBatch; ++r) {
    for (std::size_t d = 0; d < directions.size(); ++d) {
      const float a = scales[d] * normal(rng);
      for (std::size_t i = 0; i < kInputs; ++i) x[r * kInputs + i] += a * directions[d][i];
    }
  }
  return x;
}

std::vector<float> unit(std::size_t i) {
  std::vector<float> v(kInputs, 0.0f);
  v[i] = 1.0f;
  return v;
}

// Feeds one batch to the projection as a finished task's inputs.
void protect(GradientProjection& projection, Network& network, const std::vector<float>& x) {
  const std::vector<std::uint8_t> labels(kBatch, 0);
  projection.begin_task();
  network.evaluate_batch(x.data(), labels, BatchNormStats::running, network.batchnorm_state());
  projection.add_batch(network, kBatch);
  projection.end_task(network);
}

// Column j of layer 0's protected basis.
std::vector<float> basis_column(const GradientProjection& projection, std::size_t j) {
  const ProtectedSpace& space = projection.spaces()[0];
  std::vector<float> v(kInputs);
  for (std::size_t i = 0; i < kInputs; ++i) v[i] = space.basis[i * space.rank + j];
  return v;
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Layer 0's outputs (kHidden) for input x under weights w (kHidden x kInputs).
std::vector<float> outputs(const std::vector<float>& w, const float* x) {
  std::vector<float> y(kHidden, 0.0f);
  for (std::size_t o = 0; o < kHidden; ++o) {
    for (std::size_t i = 0; i < kInputs; ++i) y[o] += w[o * kInputs + i] * x[i];
  }
  return y;
}

}  // namespace

TEST_CASE("a task's inputs protect the directions that carry the threshold's share of them",
          "[projection]") {
  Network network = small_network();
  std::mt19937 rng(1);
  SECTION("inputs in a 3-dimensional subspace: 3 orthonormal directions spanning it") {
    const std::vector<std::vector<float>> dirs{
        {1, 1, 0, 0, 0, 0, 0, 0}, {0, 0, 1, -1, 0, 0, 0, 0}, {0, 1, 0, 0, 2, 0, 0, 0}};
    GradientProjection projection({0.999f, 0.0f}, network);
    CHECK_FALSE(projection.protects(0));
    protect(projection, network, inputs_in(dirs, {1.0f, 1.0f, 1.0f}, rng));
    REQUIRE(projection.spaces()[0].rank == 3);
    CHECK(projection.protects(0));
    CHECK(projection.protects(1));  // the hidden layer's inputs: sign activations
    for (std::size_t a = 0; a < 3; ++a) {
      for (std::size_t b = 0; b < 3; ++b) {
        CHECK(dot(basis_column(projection, a), basis_column(projection, b)) ==
              Approx(a == b ? 1.0f : 0.0f).margin(1e-5));
      }
    }
    // Every input direction lies in the span: its projection on the basis keeps its norm.
    for (const auto& d : dirs) {
      float kept = 0.0f;
      for (std::size_t j = 0; j < 3; ++j) kept += std::pow(dot(d, basis_column(projection, j)), 2);
      CHECK(kept == Approx(dot(d, d)).epsilon(1e-4));
    }
  }
  SECTION("the threshold decides how many directions: 1 for 50 %, 2 for 99.9 %") {
    // Energies about 100 : 1 along e0 and e1.
    const std::vector<float> x = inputs_in({unit(0), unit(1)}, {10.0f, 1.0f}, rng);
    GradientProjection half({0.5f, 0.0f}, network), most({0.999f, 0.0f}, network);
    protect(half, network, x);
    protect(most, network, x);
    REQUIRE(half.spaces()[0].rank == 1);
    // e0, up to the samples' small correlation of e0 and e1.
    CHECK(std::abs(basis_column(half, 0)[0]) == Approx(1.0f).epsilon(1e-3));
    CHECK(most.spaces()[0].rank == 2);
  }
  SECTION("a second task adds only directions outside the first's") {
    GradientProjection projection({0.999f, 0.0f}, network);
    protect(projection, network, inputs_in({unit(0), unit(1)}, {1.0f, 1.0f}, rng));
    REQUIRE(projection.spaces()[0].rank == 2);
    const std::vector<float> first0 = basis_column(projection, 0);
    const std::vector<float> first1 = basis_column(projection, 1);
    // Overlapping the first task (e1) and new (e2, e3).
    protect(projection, network, inputs_in({unit(1), unit(2), unit(3)}, {1.0f, 1.0f, 1.0f}, rng));
    REQUIRE(projection.spaces()[0].rank == 4);
    CHECK(basis_column(projection, 0) == first0);  // the first task's directions are kept
    CHECK(basis_column(projection, 1) == first1);
    for (std::size_t j = 2; j < 4; ++j) {
      const std::vector<float> added = basis_column(projection, j);
      CHECK(dot(added, first0) == Approx(0.0f).margin(1e-5));
      CHECK(dot(added, first1) == Approx(0.0f).margin(1e-5));
      CHECK(added[0] * added[0] + added[1] * added[1] == Approx(0.0f).margin(1e-5));
    }
  }
  SECTION("bad settings and states are refused") {
    CHECK_THROWS_AS(GradientProjection({1.0f, 0.1f}, network), std::invalid_argument);
    CHECK_THROWS_AS(GradientProjection({-0.1f, 0.1f}, network), std::invalid_argument);
    CHECK_THROWS_AS(GradientProjection({0.9f, -1.0f}, network), std::invalid_argument);
    CHECK_THROWS_AS(GradientProjection({0.9f, 0.1f, 0}, network), std::invalid_argument);
    GradientProjection projection({0.9f, 0.1f}, network);
    std::vector<ProtectedSpace> spaces(2);
    spaces[0].rank = 1;  // without its basis and anchor
    CHECK_THROWS_AS(projection.restore(spaces), std::invalid_argument);
    CHECK_THROWS_AS(projection.restore({}), std::invalid_argument);
  }
}

TEST_CASE("a projected step leaves the layer's outputs on the protected inputs unchanged",
          "[projection]") {
  Network network = small_network();
  std::mt19937 rng(2);
  const std::vector<float> x = inputs_in({unit(0), unit(1), unit(2)}, {1.0f, 2.0f, 1.0f}, rng);
  const std::vector<float>& quantized = network.layers()[0].quantized;
  const std::vector<float> before = network.layers()[0].hidden;
  std::normal_distribution<float> normal(0.0f, 0.1f);

  SECTION("without feedback: only the step's part outside the protected directions is kept") {
    GradientProjection projection({0.9999f, 0.0f}, network);
    protect(projection, network, x);
    REQUIRE(projection.spaces()[0].rank == 3);
    std::vector<float> after = before;
    for (float& w : after) w += normal(rng);
    const std::vector<float> unprojected = after;
    projection.project_step(0, before, after, quantized, 1);
    for (std::size_t r = 0; r < kBatch; ++r) {
      const std::vector<float> y0 = outputs(before, &x[r * kInputs]);
      const std::vector<float> y1 = outputs(after, &x[r * kInputs]);
      for (std::size_t o = 0; o < kHidden; ++o) CHECK(y1[o] == Approx(y0[o]).margin(1e-5));
    }
    // The weights of the unprotected inputs (3 to 7) moved as the optimizer moved them.
    for (std::size_t o = 0; o < kHidden; ++o) {
      for (std::size_t i = 3; i < kInputs; ++i) {
        CHECK(after[o * kInputs + i] == Approx(unprojected[o * kInputs + i]).margin(1e-6));
      }
    }
  }
  SECTION("with feedback: W_Q's drift inside the protected directions is pulled back") {
    const float feedback = 0.25f;
    // Fed back at every second step of a task.
    GradientProjection projection({0.9999f, feedback, 2}, network);
    protect(projection, network, x);  // the anchor is the W_Q of now
    // W_Q drifted by +0.5 on weight (0, 1) (protected input) and (1, 5) (unprotected); no step.
    std::vector<float> drifted = quantized;
    drifted[0 * kInputs + 1] += 0.5f;
    drifted[1 * kInputs + 5] += 0.5f;
    std::vector<float> after = before;
    projection.project_step(0, before, after, drifted, 3);
    CHECK(after == before);  // step 3: no feedback
    projection.project_step(0, before, after, drifted, 4);
    for (std::size_t k = 0; k < after.size(); ++k) {
      const float expected = k == 0 * kInputs + 1 ? before[k] - feedback * 0.5f : before[k];
      CHECK(after[k] == Approx(expected).margin(1e-6));
    }
  }
}

TEST_CASE("the protected spaces survive a checkpoint: a stopped run resumes exactly",
          "[training][projection]") {
  TrainConfig config;
  config.tasks = {"mnist", "fashion"};
  config.epochs = 2;
  config.hidden = {32};
  config.train_limit = 1000;
  config.batch = 20;
  config.threads = 2;
  config.rule = MetaplasticRule::global;
  config.mstar = 0.0f;
  config.projection = 0.99f;
  config.projection_feedback = 0.5f;
  config.projection_feedback_every = 3;  // counted in the task's steps, across the stops
  config.data_dir = default_data_dir();
  const fs::path whole = metaplast::test::scratch_path("metaplast-test", "projection");
  const fs::path parts = metaplast::test::scratch_path("metaplast-test", "projection-resumed");
  const fs::path plain = metaplast::test::scratch_path("metaplast-test", "projection-off");
  const nlohmann::json expected = metaplast::hil::run_training(config, whole, false);
  CHECK(expected["config"]["options"]["projection"] == Approx(0.99));
  // The summary says what the protected directions cost: per layer, rank x (inputs + outputs)
  // floats.
  const nlohmann::json& ranks = expected["projection"]["directions_per_layer"];
  REQUIRE(ranks.size() == 2);
  CHECK(ranks[0].get<std::size_t>() > 0);
  CHECK(ranks[0].get<std::size_t>() <= 784);
  CHECK(ranks[1].get<std::size_t>() <= 32);
  CHECK(expected["projection"]["host_bytes"] ==
        4 * (ranks[0].get<std::size_t>() * (784 + 32) + ranks[1].get<std::size_t>() * (32 + 10)));
  // Stopped after each of the first three epochs (the task boundary included), resumed.
  const nlohmann::json resumed = metaplast::test::run_stopped_three_times(config, parts);
  CHECK(resumed["after_task"] == expected["after_task"]);
  CHECK(metaplast::test::read_file(parts / kMetricsFile) ==
        metaplast::test::read_file(whole / kMetricsFile));
  // The projection keeps the first task (within 5 points, at this small scale) where the same run
  // without it forgets (more than 40 points lost).
  config.projection = 0.0f;
  const nlohmann::json off = metaplast::hil::run_training(config, plain, false);
  CHECK(off["after_task"]["mnist"] == expected["after_task"]["mnist"]);  // task 1 untouched
  const auto mnist_lost = [](const nlohmann::json& summary) {
    return summary["after_task"]["mnist"]["mnist"].get<double>() -
           summary["after_task"]["fashion"]["mnist"].get<double>();
  };
  CHECK(mnist_lost(expected) < 0.05);
  CHECK(mnist_lost(off) > 0.40);
  CHECK_FALSE(off["config"]["options"].contains("projection"));  // its first value: left out
  for (const auto& d : {whole, parts, plain}) fs::remove_all(d);
}

TEST_CASE("projection options out of range are refused, naming the option", "[projection]") {
  TrainConfig config;
  for (float bad : {1.0f, -0.01f, std::nanf("")}) {
    config.projection = bad;
    CHECK_THROWS_WITH(config.validate(), Catch::Contains("projection"));
  }
  config.projection = 0.99f;
  config.projection_feedback = -1.0f;
  CHECK_THROWS_WITH(config.validate(), Catch::Contains("projection-feedback"));
  config.projection_feedback = 0.5f;
  config.projection_feedback_every = 0;
  CHECK_THROWS_WITH(config.validate(), Catch::Contains("projection-feedback-every"));
}
