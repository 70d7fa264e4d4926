// The selective metaplastic rules (docs/method.md section 6): `depth` (a per-weight consolidation
// depth) and `importance` (Adam's second moment of the earlier tasks): the fused kernel against
// the scalar reference, and their state through a checkpoint. The depth rule's reduction to the
// BNN rule with 2 levels is tested with the interval rule's, in test_metaplastic_optimizer.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "app/hil/memory_report.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/metaplastic_optimizer.hpp"
#include "app/learning/trainer.hpp"
#include "tests/app/support/optimizer_steps.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/stopped_run.hpp"

using namespace metaplast::learning;
namespace fs = std::filesystem;

using metaplast::test::one_step;
using metaplast::test::random_vector;
using metaplast::test::Run;
using metaplast::test::run_steps;

TEST_CASE("depth grows toward inner levels, is consumed by steps out, cleared by a level change",
          "[optimizer][selective]") {
  const Quantizer q = Quantizer::uniform(4);  // -1, -1/3, 1/3, 1; thresholds -2/3, 0, 2/3
  const float h = 1.0f / 3.0f;
  // Toward the inner level 1/3 from below (interval 1, away from T = 0): grows by rate * moved / h.
  CHECK(next_depth(q, 0.5f, 0.2f, 0.1f, 0.1f + 0.01f, false) ==
        Approx(0.2f + 0.5f * 0.01f / h).epsilon(1e-5));
  // Toward it from above (interval 2, away from T = 2/3): grows too.
  CHECK(next_depth(q, 0.5f, 0.2f, 0.5f, 0.49f, false) ==
        Approx(0.2f + 0.5f * 0.01f / h).epsilon(1e-5));
  // Toward an outer level (1 from 0.8, or -1 from -0.8; beyond it W_H itself grows): unchanged.
  CHECK(next_depth(q, 0.5f, 0.2f, 0.8f, 0.81f, false) == 0.2f);
  CHECK(next_depth(q, 0.5f, 0.2f, -0.8f, -0.81f, false) == 0.2f);
  CHECK(next_depth(q, 0.5f, 0.0f, 1.5f, 1.6f, false) == 0.0f);
  // A consolidating step consumes moved / h, down to 0.
  CHECK(next_depth(q, 0.5f, 0.2f, 0.5f, 0.51f, true) == Approx(0.2f - 0.01f / h).epsilon(1e-5));
  CHECK(next_depth(q, 0.5f, 0.01f, 0.5f, 0.6f, true) == 0.0f);
  // Crossing a threshold (0.65 -> 0.67 crosses 2/3) clears it.
  CHECK(next_depth(q, 0.5f, 3.0f, 0.65f, 0.67f, true) == 0.0f);

  // The factor: M = 1 - tanh^2(m* (d / h + c)) when consolidating, 1 otherwise.
  const float mstar = 2.0f;
  CHECK(metaplastic_factor(q, MetaplasticRule::depth, mstar, 1.0f / 3.0f, -1.0f, 0.5f) ==
        Approx(1.0f - std::pow(std::tanh(mstar * 1.5f), 2.0f)).epsilon(1e-4));
  CHECK(metaplastic_factor(q, MetaplasticRule::depth, mstar, 1.0f / 3.0f, 1.0f, 0.5f) == 1.0f);
  CHECK(metaplastic_factor(q, MetaplasticRule::depth, mstar, 1.0f / 3.0f, -1.0f, 0.0f) ==
        metaplastic_factor(q, MetaplasticRule::interval, mstar, 1.0f / 3.0f, -1.0f));
}

TEST_CASE("the fused depth and importance steps follow the scalar reference",
          "[optimizer][selective]") {
  const Quantizer q({-1.0f, -0.6f, -0.1f, 0.0f, 0.3f, 1.0f});  // uneven, as a device's levels
  std::mt19937 rng(3);
  const std::size_t n = 6000;
  const std::vector<float> initial = random_vector(n, 1.2f, rng);
  std::vector<float> start_state(n);
  std::uniform_real_distribution<float> depth(0.0f, 2.0f);
  for (float& c : start_state) c = depth(rng);
  for (MetaplasticRule rule : {MetaplasticRule::depth, MetaplasticRule::importance}) {
    OptimizerConfig config;
    config.mstar = 2.5f;
    config.rule = rule;
    config.depth_rate = 0.7f;
    config.learning_rate = 0.05f;  // steps large enough to cross thresholds
    std::mt19937 grad_rng(5);
    const std::vector<float> grad = random_vector(n, 1.0f, grad_rng);
    OptimizerConfig plain = config;
    plain.mstar = 0.0f;
    const Run step = one_step(config, q, initial, start_state, grad, 2);
    const Run adam = one_step(plain, q, initial, start_state, grad, 2);
    const std::vector<float>& meta = step.hidden;
    const std::vector<float>& state = step.state[0].consolidation;
    std::size_t attenuated = 0, grown = 0, consumed = 0, cleared = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const float first_moment = (1.0f - config.beta1) * (grad[k] + 1e-7f * initial[k]);
      const float factor =
          metaplastic_factor(q, rule, config.mstar, initial[k], first_moment, start_state[k]);
      if (factor < 1.0f) ++attenuated;
      INFO(to_string(rule) << " element " << k << " w " << initial[k] << " factor " << factor);
      REQUIRE(initial[k] - meta[k] ==
              Approx(factor * (initial[k] - adam.hidden[k])).epsilon(1e-4).margin(3e-7));
      REQUIRE(step.quantized[k] == q.quantize(meta[k]));
      if (rule == MetaplasticRule::depth) {
        const float expected =
            next_depth(q, config.depth_rate, start_state[k], initial[k], meta[k], factor < 1.0f);
        REQUIRE(state[k] == expected);
        if (expected > start_state[k]) ++grown;
        if (expected == 0.0f) ++cleared;
        if (expected > 0.0f && expected < start_state[k]) ++consumed;
      } else {
        REQUIRE(state[k] == start_state[k]);  // s changes only between tasks
      }
    }
    CHECK(attenuated > n / 4);
    if (rule == MetaplasticRule::depth) {
      CHECK(grown > n / 10);
      CHECK(consumed > n / 10);
      CHECK(cleared > 0);
    }
  }
}

TEST_CASE("importance: the interval rule until a task ends, then v / mean(v) added to s^2",
          "[optimizer][selective]") {
  const Quantizer q = Quantizer::uniform(4);
  std::mt19937 rng(8);
  const std::vector<float> initial = random_vector(3000, 1.0f, rng);
  OptimizerConfig config;
  config.rule = MetaplasticRule::importance;
  config.mstar = 4.0f;
  OptimizerConfig interval = config;
  interval.rule = MetaplasticRule::interval;
  const Run first = run_steps(config, q, initial, 10, 1, 4);
  const Run reference = run_steps(interval, q, initial, 10, 1, 4);
  REQUIRE(first.hidden == reference.hidden);
  for (float s : first.state[0].consolidation) REQUIRE(s == 0.0f);

  MetaplasticAdam optimizer(config, q, 1);
  optimizer.add_quantized_tensor(initial.size());
  optimizer.restore(10, first.state);
  optimizer.reset();  // the second task starts
  const std::vector<float>& v = first.state[0].second;
  double mean = 0.0;
  for (float x : v) mean += x;
  mean /= static_cast<double>(v.size());
  const std::vector<float>& s = optimizer.moments()[0].consolidation;
  for (std::size_t k = 0; k < v.size(); ++k) {
    INFO("element " << k);
    REQUIRE(s[k] == Approx(std::sqrt(v[k] / mean)).epsilon(1e-4));
  }
  CHECK(optimizer.step_count() == 0);
  // From now on the steps follow s: one step against the reference factor with s.
  std::vector<float> hidden = first.hidden, quantized(hidden.size());
  std::vector<float> grad = random_vector(hidden.size(), 1.0f, rng);
  optimizer.begin_step();
  optimizer.update_quantized(0, hidden, quantized, grad);
  OptimizerConfig plain = config;
  plain.mstar = 0.0f;
  const std::vector<float> adam_hidden = one_step(plain, q, first.hidden, {}, grad).hidden;
  std::size_t freed = 0;
  for (std::size_t k = 0; k < hidden.size(); ++k) {
    const float first_moment = (1.0f - config.beta1) * (grad[k] + 1e-7f * first.hidden[k]);
    const float factor = metaplastic_factor(q, MetaplasticRule::importance, 4.0f, first.hidden[k],
                                            first_moment, s[k]);
    const float interval_factor =
        metaplastic_factor(q, MetaplasticRule::interval, 4.0f, first.hidden[k], first_moment);
    if (factor > interval_factor) ++freed;
    INFO("element " << k);
    REQUIRE(first.hidden[k] - hidden[k] ==
            Approx(factor * (first.hidden[k] - adam_hidden[k])).epsilon(1e-4).margin(3e-7));
  }
  CHECK(freed > 0);
  // A weight the earlier task never used (v = 0, s = 0) is free at any m*.
  CHECK(metaplastic_factor(q, MetaplasticRule::importance, 4.0f, 1.0f / 3.0f, -1.0f, 0.0f) == 1.0f);
}

TEST_CASE("a selective rule's state survives a checkpoint: a stopped run resumes exactly",
          "[training][selective]") {
  for (MetaplasticRule rule : {MetaplasticRule::depth, MetaplasticRule::importance}) {
    TrainConfig config;
    config.tasks = {"mnist", "fashion"};
    config.epochs = 2;
    config.hidden = {64, 32};
    config.train_limit = 1000;
    config.batch = 20;
    config.learning_rate = 0.02f;
    config.threads = 2;
    config.rule = rule;
    config.mstar = 3.0f;
    config.data_dir = default_data_dir();
    const std::string name(to_string(rule));
    const fs::path whole = metaplast::test::scratch_path("metaplast-test", "selective-" + name);
    const fs::path parts =
        metaplast::test::scratch_path("metaplast-test", "selective-resumed-" + name);
    const nlohmann::json expected = metaplast::hil::run_training(config, whole, false);
    // Stopped after each of the first three epochs (the task boundary included), resumed.
    const nlohmann::json resumed = metaplast::test::run_stopped_three_times(config, parts);
    INFO(name);
    CHECK(resumed["after_task"] == expected["after_task"]);
    CHECK(metaplast::test::read_file(parts / kMetricsFile) ==
          metaplast::test::read_file(whole / kMetricsFile));
    CHECK(expected["config"]["options"]["rule"] == name);
    for (const auto& d : {whole, parts}) fs::remove_all(d);
  }
}

TEST_CASE("the memory report counts a selective rule's consolidation state", "[selective]") {
  const std::vector<std::size_t> sizes{784, 1024, 512, 10};
  const nlohmann::json plain = metaplast::hil::memory_report(sizes, 0);
  const nlohmann::json depth = metaplast::hil::memory_report(sizes, 0, 4);
  CHECK(plain["hidden_weight_ratio"].get<double>() == Approx(15.0).epsilon(0.01));
  CHECK_FALSE(plain.contains("hidden_and_consolidation_ratio"));
  CHECK(depth["hidden_weight_ratio"] == plain["hidden_weight_ratio"]);
  // 32 + 32 bits per weight against the BNN's 32: half the ratio; 32 + 8: four fifths of it.
  CHECK(depth["hidden_and_consolidation_ratio"].get<double>() ==
        Approx(plain["hidden_weight_ratio"].get<double>() / 2.0));
  CHECK(depth["hidden_and_8bit_consolidation_ratio"].get<double>() ==
        Approx(plain["hidden_weight_ratio"].get<double>() * 0.8));
  CHECK(depth["host_bytes_per_weight"]["total"].get<int>() ==
        plain["host_bytes_per_weight"]["total"].get<int>() + 4);
  CHECK_THAT(metaplast::hil::memory_report_line(depth),
             Catch::Contains("32-bit consolidation state 7.5x (8-bit: 12.0x)"));
}
