#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <vector>

#include "app/learning/quantizer.hpp"

using metaplast::learning::Quantizer;

TEST_CASE("uniform levels span [-1, 1] with 0 as a level for odd counts", "[quantizer]") {
  const Quantizer q = Quantizer::uniform(9);
  REQUIRE(q.size() == 9);
  CHECK(q.level(0) == -1.0f);
  CHECK(q.level(4) == 0.0f);
  CHECK(q.level(8) == 1.0f);
  CHECK(q.level(1) == -0.75f);
  CHECK(q.threshold(0) == -0.875f);
  CHECK(q.half_width(3) == 0.125f);
}

TEST_CASE("nearest level, saturating at both ends", "[quantizer]") {
  const Quantizer q = Quantizer::uniform(9);
  CHECK(q.quantize(0.1f) == 0.0f);
  CHECK(q.quantize(0.2f) == 0.25f);
  CHECK(q.quantize(-0.6f) == -0.5f);
  CHECK(q.quantize(5.0f) == 1.0f);
  CHECK(q.quantize(-7.0f) == -1.0f);
  CHECK(q.level_index(-100.0f) == 0);
  CHECK(q.level_index(100.0f) == 8);
}

TEST_CASE("a value exactly on a threshold rounds to the upper level", "[quantizer]") {
  const Quantizer q = Quantizer::uniform(9);
  for (std::size_t i = 0; i + 1 < q.size(); ++i) {
    CHECK(q.level_index(q.threshold(i)) == i + 1);
    CHECK(q.level_index(std::nextafter(q.threshold(i), -2.0f)) == i);
  }
  const Quantizer binary({-1.0f, 1.0f});
  CHECK(binary.quantize(0.0f) == 1.0f);
  CHECK(binary.quantize(-0.0001f) == -1.0f);
}

TEST_CASE("non-uniform levels: thresholds, half-widths and intervals", "[quantizer]") {
  const Quantizer q({-1.0f, -0.2f, 0.0f, 0.5f, 2.0f});
  CHECK(q.threshold(0) == Approx(-0.6f));
  CHECK(q.threshold(2) == Approx(0.25f));
  CHECK(q.half_width(3) == Approx(0.75f));
  CHECK(q.quantize(-0.5f) == -0.2f);
  CHECK(q.quantize(-0.7f) == -1.0f);
  CHECK(q.quantize(1.24f) == 0.5f);
  CHECK(q.quantize(1.25f) == 2.0f);  // tie
  // Containing interval: Q_j <= w < Q_{j+1}, clamped to [0, N-2].
  CHECK(q.interval_index(-5.0f) == 0);
  CHECK(q.interval_index(-1.0f) == 0);
  CHECK(q.interval_index(-0.2f) == 1);
  CHECK(q.interval_index(0.3f) == 2);
  CHECK(q.interval_index(0.5f) == 3);
  CHECK(q.interval_index(2.0f) == 3);
  CHECK(q.interval_index(9.0f) == 3);
}

TEST_CASE("vectorised forms agree with the scalar ones", "[quantizer]") {
  // Uniform sets (the table path where the machine has it, up to 16 levels), nearly uniform and
  // far from uniform ones (select chains), and more than 32 levels (binary search).
  std::vector<Quantizer> sets;
  for (std::size_t count : {2u, 3u, 4u, 9u, 16u, 17u, 40u}) {
    sets.push_back(Quantizer::uniform(count, -1.0f, 1.0f));
  }
  sets.push_back(Quantizer::uniform(4, -0.3f, 0.7f));
  sets.push_back(Quantizer({-1.0f, -0.3f, 0.35f, 1.0f}));
  sets.push_back(Quantizer({-1.0f, -0.9f, -0.5f, 0.2f, 1.0f}));
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-1.5f, 1.5f);
  for (const Quantizer& q : sets) {
    std::vector<float> w;
    for (int i = -1300; i <= 1300; ++i) w.push_back(static_cast<float>(i) / 1000.0f);
    for (const auto values : {q.thresholds(), q.levels()}) {
      for (float x : values) {
        w.insert(w.end(), {x, std::nextafter(x, -2.0f), std::nextafter(x, 2.0f)});
      }
    }
    const float inf = std::numeric_limits<float>::infinity();
    w.insert(w.end(), {inf, -inf, 1e30f, -1e30f, 1e-40f, -1e-40f, -0.0f});
    for (int i = 0; i < 5000; ++i) w.push_back(uniform(rng));
    // Whole lists and short ones (the vector tails).
    for (const std::size_t size : {w.size(), std::size_t{13}, std::size_t{1}}) {
      const std::span<const float> in(w.data() + w.size() - size, size);
      std::vector<float> out(size), centre(size), inverse_half(size);
      std::vector<std::uint16_t> index(size);
      q.quantize(in, out);
      q.level_indices(in, index);
      q.interval_centres(in, centre, inverse_half);
      for (std::size_t k = 0; k < size; ++k) {
        INFO("levels " << q.size() << " from " << q.level(0) << " w " << in[k]);
        REQUIRE(out[k] == q.quantize(in[k]));
        REQUIRE(index[k] == q.level_index(in[k]));
        const std::size_t j = q.interval_index(in[k]);
        REQUIRE(centre[k] == q.threshold(j));
        REQUIRE(inverse_half[k] == q.inverse_half_width(j));
      }
    }
  }
}

TEST_CASE("invalid level lists are refused with a message", "[quantizer]") {
  CHECK_THROWS_WITH(Quantizer({0.5f}), Catch::Contains("at least 2 levels"));
  CHECK_THROWS_WITH(Quantizer({0.0f, 0.5f, 0.5f}), Catch::Contains("strictly increasing"));
  CHECK_THROWS_WITH(Quantizer({0.0f, -0.5f}), Catch::Contains("level 1"));
  CHECK_THROWS_WITH(Quantizer({0.0f, std::numeric_limits<float>::infinity()}),
                    Catch::Contains("not finite"));
  CHECK_THROWS_WITH(Quantizer({std::nanf(""), 1.0f}), Catch::Contains("not finite"));
  CHECK_THROWS_WITH(Quantizer::uniform(1), Catch::Contains("at least 2 levels"));
  CHECK_THROWS_AS(Quantizer::uniform(9, 1.0f, -1.0f), std::invalid_argument);
  const Quantizer q = Quantizer::uniform(3);
  std::vector<float> in(4), out(3);
  CHECK_THROWS_AS(q.quantize(in, out), std::invalid_argument);
}
