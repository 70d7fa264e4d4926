// The live view's shared update bodies (app/live/live_updates.hpp) and a measurement's plot as
// the page gets it (bench::to_live_plot, hil::cdf_plot): docs/live.md, "Updates".
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "app/bench/level_plot.hpp"
#include "app/hil/characterize.hpp"
#include "app/live/live_updates.hpp"

using namespace metaplast;
using namespace std::chrono_literals;

TEST_CASE("progress_body gives an ETA from this session's pace once it is known") {
  const auto early = live::progress_body(0.01, "level 0", 0.01, 10s);
  CHECK(early["fraction"] == 0.01);
  CHECK(early["what"] == "level 0");
  CHECK_FALSE(early.contains("eta_s"));  // 1 % done: too little to tell
  // A resumed run at 50 %, 10 % more done in 20 s: 40 % left takes 80 s.
  const auto resumed = live::progress_body(0.6, "time point 12 of 20", 0.1, 20s);
  CHECK(resumed["eta_s"].get<double>() == Approx(80.0));
  CHECK(live::progress_body(1.5, "x", 1.0, 1s)["fraction"] == 1.0);  // clamped
}

TEST_CASE("Pace: the first progress marks where and when the session started") {
  live::Pace pace;
  // A resumed run at 50 %: no ETA before the session has a pace.
  CHECK_FALSE(pace.progress(0.5, "epoch 5 of 10").contains("eta_s"));
  std::this_thread::sleep_for(600ms);
  const auto later = pace.progress(0.6, "epoch 6 of 10");
  CHECK(later["fraction"] == 0.6);
  // 10 % in at least 0.6 s: the 40 % left take at least 2.4 s (the epochs before the session
  // do not count towards its pace).
  REQUIRE(later.contains("eta_s"));
  CHECK(later["eta_s"].get<double>() >= 2.4);
}

TEST_CASE("plot_body leaves out what cannot be drawn, rounds and thins") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  live::Plot plot{"t", "time t (s)", "G (µS)", true, true, {}};
  plot.series.push_back({"level 1", {1, 2, 3, 4, 5}, {10.123456, nan, -1, 0, 20}, 1, false});
  plot.series.push_back({"level 1, fit", {0, 10}, {1, 2}, 1, true});
  const auto body = live::plot_body(plot);
  CHECK(body["x_log"] == true);
  CHECK(body["y_log"] == true);
  CHECK(body["x_label"] == "time t (s)");
  const auto& level = body["series"][0];
  // NaN, a negative and a zero G are not drawable on a log axis; 4 significant digits.
  CHECK(level["x"] == nlohmann::json::array({1, 5}));
  CHECK(level["y"] == nlohmann::json::array({10.12, 20}));
  CHECK(level["group"] == 1);
  CHECK(level["fit"] == false);
  const auto& fit = body["series"][1];
  CHECK(fit["x"] == nlohmann::json::array({10}));  // x = 0 is not on a log axis
  CHECK(fit["fit"] == true);

  live::Plot many{"m", "x (1)", "y (1)", false, false, {{"s", {}, {}, 0, false}}};
  for (int i = 0; i < 1001; ++i) {
    many.series[0].x.push_back(i);
    many.series[0].y.push_back(-i);
  }
  const auto thinned = live::plot_body(many, 11)["series"][0];
  REQUIRE(thinned["x"].size() == 11);
  CHECK(thinned["x"].front() == 0);  // the ends are kept
  CHECK(thinned["x"].back() == 1000);
  CHECK(thinned["x"][5] == 500);
  CHECK(thinned["y"][5] == -500);
}

TEST_CASE("to_live_plot: the medians, the fits dashed in their level's colour, plain labels") {
  bench::LevelPlot plot;
  plot.title = "Window";
  plot.x_label = "Compliance current I_{CC} (µA)";
  plot.y_label = "Conductance G (µS)";
  plot.log_x = true;
  bench::LevelCurve curve;
  curve.level = 3;
  curve.label = "level 3 (V_{BL} 1 V)";
  curve.x = {1, 10};
  curve.median = {5, 6};
  curve.low = {4, 5};
  curve.high = {6, 7};
  curve.fit_x = {1, 10};
  curve.fit_y = {5.5, 6.5};
  plot.curves.push_back(curve);
  const live::Plot out = bench::to_live_plot(plot);
  CHECK(out.title == "Window (medians; dashed: fits)");
  CHECK(out.x_label == "Compliance current I_CC (µA)");
  CHECK(out.log_x);
  CHECK_FALSE(out.log_y);
  REQUIRE(out.series.size() == 2);
  CHECK(out.series[0].label == "level 3 (V_BL 1 V)");
  CHECK(out.series[0].y == std::vector<double>{5, 6});
  CHECK(out.series[0].group == 3);
  CHECK_FALSE(out.series[0].fit);
  CHECK(out.series[1].label == "level 3 (V_BL 1 V), fit");
  CHECK(out.series[1].fit);
  CHECK(out.series[1].group == 3);
}

TEST_CASE("cdf_plot: every level's samples as a CDF, fractions as cdf.csv gives them") {
  hil::LevelSamples lcs;
  lcs.level = 0;
  lcs.by_cell = {{3, 1}, {2, 4}};
  hil::LevelSamples set;
  set.level = 2;
  set.icc_ua = 20;
  for (int c = 0; c < 100; ++c) set.by_cell.push_back({40.0 + c, 140.0 - c});
  const live::Plot plot = hil::cdf_plot({lcs, set}, "CDF", 50);
  CHECK(plot.log_x);
  CHECK(plot.x_label == "Conductance G (µS)");
  REQUIRE(plot.series.size() == 2);
  CHECK(plot.series[0].label == "level 0 (LCS, after RESET)");
  CHECK(plot.series[0].x == std::vector<double>{1, 2, 3, 4});
  CHECK(plot.series[0].y == std::vector<double>{0.125, 0.375, 0.625, 0.875});
  CHECK(plot.series[1].label == "level 2 (I_CC 20 uA)");
  CHECK(plot.series[1].group == 2);
  REQUIRE(plot.series[1].x.size() == 50);  // 200 samples, 50 quantiles
  CHECK(plot.series[1].x.front() == 40);
  CHECK(plot.series[1].x.back() == 140);
  CHECK(plot.series[1].y.front() == Approx(0.5 / 200));
  CHECK(plot.series[1].y.back() == Approx(199.5 / 200));
}
