// `metaplast report`: on a small train run and on a small campaign (characterisation, m* sweep,
// repeats), the HTML page and every PNG are written (valid PNG files), and plots whose inputs are
// absent are listed as such on the page.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/campaign/campaign.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "app/report/report.hpp"
#include "app/runner/runner.hpp"
#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;

namespace {

using metaplast::test::read_file;

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-report", name);
}

void check_page(const metaplast::report::ReportPage& page) {
  REQUIRE(fs::exists(page.index));
  const std::string html = read_file(page.index);
  CHECK_THAT(html, Catch::StartsWith("<!DOCTYPE html>"));
  CHECK(page.errors.empty());
  for (const auto& image : page.images) {
    INFO(image);
    const std::string bytes = read_file(image);
    REQUIRE(bytes.size() > 1000);
    CHECK(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    CHECK_THAT(html, Catch::Contains("src=\"" + image.filename().string() + "\""));
  }
  for (const auto& missing : page.missing) CHECK_THAT(html, Catch::Contains(missing.substr(0, 20)));
}

bool has_image(const metaplast::report::ReportPage& page, const std::string& prefix) {
  for (const auto& i : page.images) {
    if (i.filename().string().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("report of a train run: accuracy plot, and the absent inputs named") {
  metaplast::learning::TrainConfig config;
  config.tasks = {"mnist", "fashion"};
  config.epochs = 1;
  config.train_limit = 2000;
  config.hidden = {32};
  config.data_dir = metaplast::learning::default_data_dir();
  const fs::path dir = scratch("train");
  metaplast::hil::run_training(config, dir, false);

  const auto page = metaplast::report::write_report(dir);
  check_page(page);
  CHECK(has_image(page, "accuracy"));
  bool cdf_named = false;
  for (const auto& m : page.missing) cdf_named = cdf_named || m.find("level CDFs") == 0;
  CHECK(cdf_named);
  fs::remove_all(dir);
}

TEST_CASE("report of a campaign: m* sweep, level CDFs and repeats are plotted") {
  const auto campaign = metaplast::campaign::parse_campaign(nlohmann::json::parse(R"({
      "campaign": "report-test",
      "defaults": {"train": {"tasks": ["mnist", "fashion"], "epochs": 1, "train-limit": 2000,
                             "hidden": [32]}},
      "steps": [
        {"id": "char", "type": "characterize", "device": "sim:?seed=3&formed=1",
         "cells": 20, "cycles": 2, "read_repeats": 2, "read_cells": 10},
        {"id": "sweep", "type": "sweep", "parameter": "mstar", "values": [0, 3],
         "step": {"type": "train"}},
        {"id": "rep", "type": "repeat", "count": 2, "step": {"type": "train", "mstar": 2.4}},
        {"id": "stats", "type": "evaluate", "runs": "@rep"},
        {"id": "report", "type": "report"}]})"),
                                                            "report-test.json");
  metaplast::campaign::RunOptions options;
  options.out_dir = scratch("campaign");
  options.log_to_stderr = false;
  const auto outcome = metaplast::campaign::run_campaign(campaign, options);
  INFO(outcome.message);
  REQUIRE(outcome.status == metaplast::campaign::RunStatus::finished);
  REQUIRE(fs::exists(options.out_dir / "report" / "index.html"));
  // The page the report step wrote shows how the campaign ended, not "running".
  const std::string written = read_file(options.out_dir / "report" / "index.html");
  CHECK_THAT(written, Catch::Contains("<th>status</th><td>finished</td>"));
  // Repeats are averaged in a named group, never "{}".
  const auto evaluation =
      nlohmann::json::parse(read_file(options.out_dir / "steps" / "stats" / "evaluation.json"));
  REQUIRE(evaluation["groups"].size() == 1);
  // Named with its m* as written (2.4), not as the float it is stored as.
  CHECK(evaluation["groups"][0]["name"] == "rep (mstar=2.4)");
  CHECK_THAT(read_file(options.out_dir / "report" / "repeats-stats.gp"),
             !Catch::Contains("{}") && Catch::Contains("rep (mstar="));

  const auto page = metaplast::report::write_report(options.out_dir);  // again, from the CLI
  check_page(page);
  CHECK(has_image(page, "mstar_sweep"));
  CHECK(has_image(page, "cdf-char"));
  CHECK(has_image(page, "repeats-stats"));
  CHECK(has_image(page, "accuracy-sweep_mstar_0"));
  CHECK(has_image(page, "accuracy-rep_seed_2"));
  fs::remove_all(options.out_dir);
}

TEST_CASE("the conductance map is drawn on the full array grid even with skipped cells") {
  // A train run whose placement skipped a bad cell: the map's data must still be the regular
  // 128 x 128 grid (NaN where nothing is placed), or gnuplot's image shears the picture.
  metaplast::learning::TrainConfig config;
  config.tasks = {"mnist"};
  config.epochs = 1;
  config.train_limit = 500;
  config.hidden = {16};
  config.data_dir = metaplast::learning::default_data_dir();
  const fs::path dir = scratch("map");
  metaplast::hil::run_training(config, dir, false);
  {
    std::ofstream csv(dir / "conductances.csv");
    csv << "row,col,conductance_us\n";
    for (int col = 0; col < 128; ++col) {
      if (col != 5) csv << "0," << col << "," << 50.0 + col << "\n";  // cell (0,5) is bad
    }
    csv << "1,0,42.5\n";  // its weight moved to the next free cell
  }
  const auto page = metaplast::report::write_report(dir);
  check_page(page);
  REQUIRE(has_image(page, "conductance"));
  std::ifstream dat(dir / "report" / "conductance-run.dat");
  std::size_t points = 0, nan_points = 0;
  std::string line;
  bool saw_bad_cell_as_nan = false, saw_moved_weight = false;
  while (std::getline(dat, line)) {
    if (line.empty()) continue;
    ++points;
    if (line.find("NaN") != std::string::npos) ++nan_points;
    if (line == "5 0 NaN") saw_bad_cell_as_nan = true;
    if (line == "0 1 42.5") saw_moved_weight = true;
  }
  CHECK(points == 128 * 128);
  CHECK(nan_points == 128 * 128 - 128);
  CHECK(saw_bad_cell_as_nan);
  CHECK(saw_moved_weight);
}

TEST_CASE("report of a directory that is no run says what it expected") {
  const fs::path dir = scratch("empty");
  fs::create_directories(dir);
  try {
    metaplast::report::write_report(dir);
    FAIL("no error");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("metrics.csv") && Catch::Contains("plan.json") &&
                             Catch::Contains("cdf.csv") && Catch::Contains("measurement.json"));
  }
  fs::remove_all(dir);
}

TEST_CASE("the bench measurements' plots are on the report of a campaign and of a measurement") {
  const fs::path file = scratch("bench-campaign.json"), dir = scratch("bench-run");
  std::ofstream(file) << nlohmann::json::parse(R"({"campaign": "bench", "steps": [
      {"id": "map", "type": "cell-map", "device": "sim:?seed=2&formed=1"},
      {"id": "disturb", "type": "read-disturb", "device": "sim:?seed=2&formed=1", "cells": 18,
       "levels": [1, 5], "reads": 30, "points": 5},
      {"type": "report"}]})")
                             .dump();
  metaplast::campaign::RunOptions options;
  options.out_dir = dir;
  options.log_to_stderr = false;
  const auto outcome =
      metaplast::campaign::run_campaign(metaplast::campaign::load_campaign(file), options);
  REQUIRE(outcome.status == metaplast::campaign::RunStatus::finished);
  const auto page = metaplast::report::write_report(dir);
  check_page(page);
  CHECK(has_image(page, "map-cell_map.png"));
  CHECK(has_image(page, "disturb-read_disturb.png"));
  CHECK_THAT(read_file(page.index), Catch::Contains("disturb: read-disturb (read_disturb.png)"));

  // A measurement folder on its own.
  const auto single = metaplast::report::write_report(dir / "steps" / "disturb");
  check_page(single);
  CHECK(single.images.size() == 1);
  CHECK(single.missing.empty());
  fs::remove_all(dir);
  fs::remove(file);
}
