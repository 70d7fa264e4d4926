#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "app/learning/metaplastic_optimizer.hpp"
#include "tests/app/support/optimizer_steps.hpp"

using namespace metaplast::learning;

using metaplast::test::random_vector;
using metaplast::test::Run;
using metaplast::test::run_steps;

TEST_CASE("the interval and depth rules with 2 levels {-1,+1} equal the BNN rule with m = m*",
          "[optimizer]") {
  std::mt19937 rng(7);
  // Hidden weights spread well beyond [-1, 1], as BNN hidden weights are.
  const std::vector<float> initial = random_vector(20000, 3.0f, rng);
  const Quantizer binary({-1.0f, 1.0f});
  // The depth rule: with 2 levels both are outer, so no depth grows (docs/method.md 6), even at
  // the fastest rate.
  for (MetaplasticRule rule : {MetaplasticRule::interval, MetaplasticRule::depth}) {
    for (float mstar : {0.5f, 1.5f, 3.0f}) {
      OptimizerConfig config;
      config.mstar = mstar;
      config.rule = rule;
      config.depth_rate = 1.0f;
      config.learning_rate = 0.05f;  // large steps: weights cross zero within the run
      OptimizerConfig global = config;
      global.rule = MetaplasticRule::global;
      OptimizerConfig plain = config;
      plain.mstar = 0.0f;
      const Run a = run_steps(config, binary, initial, 12, 2, 11);
      const Run b = run_steps(global, binary, initial, 12, 2, 11);
      const Run adam = run_steps(plain, binary, initial, 12, 2, 11);
      std::size_t attenuated_differently_from_adam = 0;
      for (std::size_t k = 0; k < initial.size(); ++k) {
        INFO(to_string(rule) << " m* " << mstar << " element " << k);
        REQUIRE(a.hidden[k] == b.hidden[k]);
        REQUIRE(a.quantized[k] == b.quantized[k]);
        REQUIRE(std::abs(a.quantized[k]) == 1.0f);
        if (rule == MetaplasticRule::depth) REQUIRE(a.state[0].consolidation[k] == 0.0f);
        if (a.hidden[k] != adam.hidden[k]) ++attenuated_differently_from_adam;
      }
      // The comparison is not vacuous: the rule did change most trajectories.
      CHECK(attenuated_differently_from_adam > initial.size() / 2);
      CHECK(b.state[0].consolidation.empty());  // the BNN rule keeps no such state
    }
  }
}

TEST_CASE("M = 1 at every threshold and 1 - tanh^2(m*) at every inner level", "[optimizer]") {
  const Quantizer uniform = Quantizer::uniform(9);
  const Quantizer uneven({-1.0f, -0.6f, -0.1f, 0.0f, 0.3f, 1.0f});
  for (const Quantizer* q : {&uniform, &uneven}) {
    for (float mstar : {2.0f, 3.0f}) {
      const float at_level = 1.0f - std::pow(std::tanh(mstar), 2.0f);
      for (std::size_t j = 0; j + 1 < q->size(); ++j) {
        const float t = q->threshold(j);
        // At the threshold, in either consolidating direction.
        CHECK(metaplastic_factor(*q, MetaplasticRule::interval, mstar, t, 1.0f) == 1.0f);
        CHECK(metaplastic_factor(*q, MetaplasticRule::interval, mstar, t, -1.0f) == 1.0f);
      }
      for (std::size_t i = 1; i + 1 < q->size(); ++i) {
        // An inner level Q_i lies in interval i, below its threshold: a step toward T_i (m < 0
        // raises W_H) is attenuated, a step away from it is not.
        const float level = q->level(i);
        CHECK(metaplastic_factor(*q, MetaplasticRule::interval, mstar, level, -1.0f) ==
              Approx(at_level).epsilon(1e-5));
        CHECK(metaplastic_factor(*q, MetaplasticRule::interval, mstar, level, 1.0f) == 1.0f);
      }
    }
  }
  // The values the paper quotes (docs/method.md section 1).
  CHECK(metaplastic_factor(uniform, MetaplasticRule::interval, 2.0f, 0.0f, -1.0f) ==
        Approx(0.0707).epsilon(1e-3));
  CHECK(metaplastic_factor(uniform, MetaplasticRule::interval, 3.0f, 0.5f, -1.0f) ==
        Approx(0.00987).epsilon(1e-2));
  // Global rule: attenuated where sign(W_H) * m > 0 only.
  CHECK(metaplastic_factor(uniform, MetaplasticRule::global, 2.0f, 0.5f, 1.0f) ==
        Approx(1.0f - std::pow(std::tanh(1.0f), 2.0f)));
  CHECK(metaplastic_factor(uniform, MetaplasticRule::global, 2.0f, 0.5f, -1.0f) == 1.0f);
}

TEST_CASE("the fused step applies exactly the factor of the reference definition", "[optimizer]") {
  const Quantizer q = Quantizer::uniform(9);
  std::mt19937 rng(3);
  const std::vector<float> initial = random_vector(5000, 1.2f, rng);
  for (MetaplasticRule rule :
       {MetaplasticRule::interval, MetaplasticRule::interval_whole, MetaplasticRule::global}) {
    OptimizerConfig config;
    config.mstar = 3.0f;
    config.rule = rule;
    OptimizerConfig plain = config;
    plain.mstar = 0.0f;
    // One step from a fresh state: m_1 = (1 - beta1) g, so the factor depends on sign(g).
    const Run meta = run_steps(config, q, initial, 1, 1, 5);
    const Run adam = run_steps(plain, q, initial, 1, 1, 5);
    std::mt19937 grad_rng(5);
    const std::vector<float> grad = random_vector(initial.size(), 1.0f, grad_rng);
    std::size_t attenuated = 0;
    for (std::size_t k = 0; k < initial.size(); ++k) {
      const float adam_step = initial[k] - adam.hidden[k];
      const float meta_step = initial[k] - meta.hidden[k];
      const float first_moment = (1.0f - config.beta1) * (grad[k] + 1e-7f * initial[k]);
      const float factor = metaplastic_factor(q, rule, config.mstar, initial[k], first_moment);
      if (factor < 1.0f) ++attenuated;
      INFO("element " << k << " w " << initial[k] << " factor " << factor);
      // Margin: the steps are differences of O(1) floats (one ulp is 1.2e-7).
      REQUIRE(meta_step == Approx(factor * adam_step).epsilon(1e-4).margin(3e-7));
      REQUIRE(meta.quantized[k] == q.quantize(meta.hidden[k]));
    }
    CHECK(attenuated > initial.size() / 4);
  }
}

TEST_CASE("m* = 0 is plain Adam with weight decay (independent implementation)", "[optimizer]") {
  const Quantizer q = Quantizer::uniform(9);
  std::mt19937 rng(21);
  std::vector<float> expected = random_vector(3000, 1.0f, rng);
  OptimizerConfig config;
  config.mstar = 0.0f;
  config.weight_decay = 1e-2f;  // large enough to matter in the comparison
  const int steps = 8;
  const Run got = run_steps(config, q, expected, steps, 2, 99);

  std::vector<double> m(expected.size(), 0.0), v(expected.size(), 0.0);
  std::mt19937 grad_rng(99);
  for (int t = 1; t <= steps; ++t) {
    const std::vector<float> grad = random_vector(expected.size(), 1.0f, grad_rng);
    const double step_size = 0.005 * std::sqrt(1.0 - std::pow(0.999, t)) / (1.0 - std::pow(0.9, t));
    for (std::size_t k = 0; k < expected.size(); ++k) {
      const double g = grad[k] + 1e-2 * expected[k];
      m[k] = 0.9 * m[k] + 0.1 * g;
      v[k] = 0.999 * v[k] + 0.001 * g * g;
      expected[k] = static_cast<float>(expected[k] - step_size * m[k] / (std::sqrt(v[k]) + 1e-8));
    }
  }
  for (std::size_t k = 0; k < expected.size(); ++k) {
    INFO("element " << k);
    REQUIRE(got.hidden[k] == Approx(expected[k]).epsilon(1e-5).margin(1e-6));
  }
}

TEST_CASE("plain tensors (BatchNorm parameters) get plain Adam", "[optimizer]") {
  OptimizerConfig config;
  config.mstar = 5.0f;
  MetaplasticAdam optimizer(config, Quantizer::uniform(9));
  const std::size_t slot = optimizer.add_plain_tensor(2);
  std::vector<float> param{0.5f, -0.5f};
  const std::vector<float> grad{1.0f, -1.0f};
  optimizer.begin_step();
  optimizer.update_plain(slot, param, grad);
  // First Adam step: |step| = lr (m / sqrt(v) = sign(g) after bias correction).
  CHECK(param[0] == Approx(0.5f - 0.005f).epsilon(1e-4));
  CHECK(param[1] == Approx(-0.5f + 0.005f).epsilon(1e-4));
}

TEST_CASE("results do not depend on the thread count; reset gives a fresh state", "[optimizer]") {
  const Quantizer q = Quantizer::uniform(9);
  std::mt19937 rng(4);
  const std::vector<float> initial = random_vector(150000, 1.0f, rng);
  OptimizerConfig config;
  const Run one = run_steps(config, q, initial, 3, 1, 8);
  const Run three = run_steps(config, q, initial, 3, 3, 8);
  REQUIRE(one.hidden == three.hidden);
  REQUIRE(one.quantized == three.quantized);

  MetaplasticAdam optimizer(config, q);
  const std::size_t slot = optimizer.add_quantized_tensor(4);
  std::vector<float> hidden{0.1f, 0.2f, -0.3f, 0.9f}, quantized(4);
  const std::vector<float> grad{1.0f, -1.0f, 0.5f, 0.0f};
  optimizer.begin_step();
  optimizer.update_quantized(slot, hidden, quantized, grad);
  optimizer.reset();
  CHECK(optimizer.step_count() == 0);
  for (const auto& m : optimizer.moments()) {
    for (float x : m.first) CHECK(x == 0.0f);
    for (float x : m.second) CHECK(x == 0.0f);
  }
  CHECK_THROWS_AS(optimizer.update_quantized(slot, hidden, quantized, grad), std::logic_error);
}

TEST_CASE("set_learning_rate changes the steps that follow, not the moments", "[optimizer]") {
  const Quantizer q = Quantizer::uniform(5);
  std::mt19937 rng(21);
  const std::vector<float> initial = random_vector(4000, 1.0f, rng);
  OptimizerConfig slow;
  slow.learning_rate = 0.002f;
  slow.weight_decay = 0.0f;  // else the gradient depends on W_H, and so would the moments
  OptimizerConfig fast = slow;
  fast.learning_rate = 0.01f;
  // Both take 3 steps at 0.01 and 3 at 0.002: one configured that way from the start for the
  // last three, the other switched; the moments must carry over unchanged.
  auto run = [&](bool switch_rate) {
    MetaplasticAdam optimizer(fast, q, 1);
    const std::size_t slot = optimizer.add_quantized_tensor(initial.size());
    std::vector<float> hidden = initial, quantized(initial.size());
    std::mt19937 grads(4);
    for (int s = 0; s < 6; ++s) {
      if (s == 3) optimizer.set_learning_rate(switch_rate ? slow.learning_rate : 0.01f);
      const std::vector<float> g = random_vector(initial.size(), 1.0f, grads);
      optimizer.begin_step();
      optimizer.update_quantized(slot, hidden, quantized, g);
    }
    return std::pair{hidden, optimizer.moments()};
  };
  const auto [switched, switched_moments] = run(true);
  const auto [constant, constant_moments] = run(false);
  REQUIRE(switched_moments[0].first == constant_moments[0].first);
  REQUIRE(switched_moments[0].second == constant_moments[0].second);
  REQUIRE(switched != constant);
  MetaplasticAdam optimizer(fast, q, 1);
  CHECK_THROWS_WITH(optimizer.set_learning_rate(0.0f), Catch::Contains("learning rate"));
}

TEST_CASE("the whole-interval normalisation is the interval rule at m* / 2", "[optimizer]") {
  const Quantizer uneven({-1.0f, -0.6f, -0.1f, 0.0f, 0.3f, 1.0f});
  std::mt19937 rng(9);
  const std::vector<float> initial = random_vector(20000, 1.2f, rng);
  OptimizerConfig whole;
  whole.rule = MetaplasticRule::interval_whole;
  whole.mstar = 6.0f;
  OptimizerConfig half = whole;
  half.rule = MetaplasticRule::interval;
  half.mstar = 3.0f;
  const Run a = run_steps(whole, uneven, initial, 8, 2, 13);
  const Run b = run_steps(half, uneven, initial, 8, 2, 13);
  REQUIRE(a.hidden == b.hidden);
  REQUIRE(a.quantized == b.quantized);
  // At an inner level, the whole-interval factor is 1 - tanh^2(m* / 2).
  CHECK(metaplastic_factor(uneven, MetaplasticRule::interval_whole, 3.0f, 0.0f, -1.0f) ==
        Approx(1.0f - std::pow(std::tanh(1.5f), 2.0f)).epsilon(1e-5));
}

TEST_CASE("rule names parse and unknown ones are refused", "[optimizer]") {
  CHECK(parse_rule("interval") == MetaplasticRule::interval);
  CHECK(parse_rule("interval-whole") == MetaplasticRule::interval_whole);
  CHECK(parse_rule("global") == MetaplasticRule::global);
  for (MetaplasticRule rule :
       {MetaplasticRule::interval, MetaplasticRule::interval_whole, MetaplasticRule::global}) {
    CHECK(parse_rule(to_string(rule)) == rule);
  }
  CHECK(parse_rule("depth") == MetaplasticRule::depth);
  CHECK(parse_rule("importance") == MetaplasticRule::importance);
  CHECK_THROWS_WITH(parse_rule("bnn"), Catch::Contains("global, depth or importance"));
}

TEST_CASE("the step lists exactly the quantized values it changed, for any thread count",
          "[optimizer]") {
  const Quantizer q = Quantizer::uniform(4);
  for (const MetaplasticRule rule : {MetaplasticRule::interval, MetaplasticRule::importance,
                                     MetaplasticRule::depth, MetaplasticRule::global}) {
    // 64 blocks and more are split over the threads; one step's list must not depend on it.
    std::vector<std::vector<std::uint32_t>> lists_per_threads;
    for (const int threads : {1, 2, 3}) {
      CAPTURE(to_string(rule), threads);
      OptimizerConfig config;
      config.rule = rule;
      config.learning_rate = 0.05f;
      MetaplasticAdam optimizer(config, q, threads);
      std::mt19937 rng(7);
      std::vector<float> hidden = random_vector(40000, 1.0f, rng);
      std::vector<float> quantized(hidden.size());
      q.quantize(hidden, quantized);
      const std::size_t slot = optimizer.add_quantized_tensor(hidden.size());
      std::vector<std::uint32_t> changed{12345u};  // replaced, not appended to
      std::vector<std::uint32_t> all_steps;
      for (int step = 0; step < 4; ++step) {
        const std::vector<float> grad = random_vector(hidden.size(), 1.0f, rng);
        const std::vector<float> before = quantized;
        optimizer.begin_step();
        optimizer.update_quantized(slot, hidden, quantized, grad, changed);
        std::vector<std::uint32_t> expected;
        for (std::size_t k = 0; k < before.size(); ++k) {
          if (before[k] != quantized[k]) expected.push_back(static_cast<std::uint32_t>(k));
        }
        REQUIRE(!expected.empty());
        REQUIRE(changed == expected);
        all_steps.insert(all_steps.end(), changed.begin(), changed.end());
      }
      lists_per_threads.push_back(all_steps);
    }
    CHECK(lists_per_threads[0] == lists_per_threads[1]);
    CHECK(lists_per_threads[0] == lists_per_threads[2]);
  }
}

TEST_CASE("listing the changes does not change the step", "[optimizer]") {
  const Quantizer q = Quantizer::uniform(4);
  OptimizerConfig config;
  config.rule = MetaplasticRule::importance;
  MetaplasticAdam plain(config, q, 2), listing(config, q, 2);
  std::mt19937 rng(3);
  std::vector<float> h1 = random_vector(70000, 1.0f, rng), h2 = h1;
  // The listing form expects W_Q of W_H on entry (as the training loop keeps it).
  std::vector<float> q1(h1.size());
  q.quantize(h1, q1);
  std::vector<float> q2 = q1;
  const std::size_t s1 = plain.add_quantized_tensor(h1.size());
  const std::size_t s2 = listing.add_quantized_tensor(h2.size());
  std::vector<std::uint32_t> changed;
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> grad = random_vector(h1.size(), 1.0f, rng);
    plain.begin_step();
    listing.begin_step();
    plain.update_quantized(s1, h1, q1, grad);
    listing.update_quantized(s2, h2, q2, grad, changed);
  }
  CHECK(h1 == h2);
  CHECK(q1 == q2);
  CHECK(plain.moments()[s1].first == listing.moments()[s2].first);
}
