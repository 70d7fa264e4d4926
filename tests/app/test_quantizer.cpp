#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
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
  for (std::size_t count : {2u, 3u, 9u, 17u, 40u}) {
    const Quantizer q = Quantizer::uniform(count, -1.0f, 1.0f);
    std::vector<float> w;
    for (int i = -1300; i <= 1300; ++i) w.push_back(static_cast<float>(i) / 1000.0f);
    for (float t : q.thresholds()) w.push_back(t);
    for (float l : q.levels()) w.push_back(l);
    std::vector<float> out(w.size()), centre(w.size()), inverse_half(w.size());
    std::vector<std::uint16_t> index(w.size());
    q.quantize(w, out);
    q.level_indices(w, index);
    q.interval_centres(w, centre, inverse_half);
    for (std::size_t k = 0; k < w.size(); ++k) {
      INFO("count " << count << " w " << w[k]);
      REQUIRE(out[k] == q.quantize(w[k]));
      REQUIRE(index[k] == q.level_index(w[k]));
      const std::size_t j = q.interval_index(w[k]);
      REQUIRE(centre[k] == q.threshold(j));
      REQUIRE(inverse_half[k] == q.inverse_half_width(j));
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
