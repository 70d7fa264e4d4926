// Run records: a campaign run directory holds the campaign and station as run, the plan, the
// version and commit, the board's identify answer and chip, the seeds, times and exit status, the
// log, a done state for every step, and each step's own files.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/campaign/campaign.hpp"
#include "app/campaign/run_record.hpp"
#include "app/runner/runner.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
namespace c = metaplast::campaign;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("metaplast-record-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  return dir;
}

json read(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

const char* kCampaign = R"({
    "campaign": "record-test",
    "steps": [
      {"id": "char", "type": "characterize", "cells": 20, "cycles": 2, "read_repeats": 2,
       "read_cells": 10, "seed": 5},
      {"id": "t", "type": "train", "tasks": ["mnist"], "epochs": 1, "train-limit": 2000,
       "hidden": [32], "seed": 9},
      {"id": "e", "type": "evaluate", "runs": "@t"}]})";

}  // namespace

TEST_CASE("a campaign run directory records what ran, on what, and how it ended") {
  // The station supplies the board address (the characterize step names none) and the chip.
  const fs::path station = scratch("station.json");
  std::ofstream(station) << R"({"station": "test-bench", "chip": "SIMCHIP-1",
      "instruments": {"board": {"type": "array-board", "address": "sim:?seed=11&formed=1"}},
      "limits": {"max_pulses_per_verify": 50}})";
  const auto campaign = c::parse_campaign(json::parse(kCampaign), "record-test.json");
  c::RunOptions options;
  options.out_dir = scratch("run");
  options.station_file = station;
  options.command_line = "metaplast campaign run record-test.json";
  options.log_to_stderr = false;
  const auto outcome = c::run_campaign(campaign, options);
  INFO(outcome.message);
  REQUIRE(outcome.status == c::RunStatus::finished);
  const fs::path& dir = options.out_dir;

  CHECK(read(dir / c::kCampaignFile) == json::parse(kCampaign));
  const json station_as_run = read(dir / c::kStationFile);
  CHECK(station_as_run["station"] == "test-bench");
  CHECK(station_as_run["instruments"]["board"]["address"] == "sim:?seed=11&formed=1");
  CHECK(station_as_run["limits"]["max_pulses_per_verify"] == 50);

  const json record = read(dir / c::kRecordFile);
  CHECK(record["status"] == "finished");
  CHECK(record["exit_code"] == 0);
  CHECK(record["seeds"] == json({5, 9}));
  CHECK(record["chip"] == "SIMCHIP-1");
  CHECK(record["metaplast_version"] == METAPLAST_VERSION);
  CHECK(record["git_commit"].get<std::string>().size() >= 7);  // a hash, or "unknown"
  CHECK(record["started"].is_string());
  CHECK(record["finished"].is_string());
  REQUIRE(record["boards"].size() == 1);
  CHECK(record["boards"][0]["step"] == "char");
  CHECK(record["boards"][0]["chip"] == "SIMCHIP-1");
  CHECK_FALSE(record["boards"][0]["identify"]["serial"].get<std::string>().empty());
  CHECK(record["sessions"][0]["command"] == "metaplast campaign run record-test.json");

  const json state = read(dir / c::kStateFile);
  CHECK(state["next"] == 3);
  for (const auto& s : state["steps"]) CHECK(s["status"] == "done");
  CHECK(read(dir / c::kPlanFile)["steps"].size() == 3);

  CHECK(fs::file_size(dir / c::kLogFile) > 0);
  CHECK(fs::exists(dir / "steps/char/calibration.json"));
  CHECK(fs::exists(dir / "steps/char/cdf.csv"));
  CHECK(fs::exists(dir / "steps/t/metrics.csv"));
  CHECK(fs::exists(dir / "steps/t/summary.json"));
  CHECK(read(dir / "steps/e/evaluation.json")["runs"][0]["id"] == "t");
  // The calibration carries the chip the station named.
  CHECK(read(dir / "steps/char/calibration.json").dump().find("SIMCHIP-1") != std::string::npos);

  // A second run into the same directory is refused, naming resume.
  try {
    c::run_campaign(campaign, options);
    FAIL("no error");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("campaign resume"));
  }
  // Resuming a finished run does nothing more and finishes again.
  const auto again = c::resume_campaign(dir, options);
  CHECK(again.status == c::RunStatus::finished);
  CHECK(read(dir / c::kRecordFile)["sessions"].size() == 2);
  fs::remove_all(dir);
  fs::remove(station);
}

TEST_CASE("a characterize step with no board address anywhere fails, recorded, resumable") {
  const auto campaign = c::parse_campaign(
      json::parse(R"({"campaign": "x", "steps": [{"id": "c", "type": "characterize"}]})"),
      "x.json");
  c::RunOptions options;
  options.out_dir = scratch("noboard");
  options.log_to_stderr = false;
  const auto outcome = c::run_campaign(campaign, options);
  CHECK(outcome.status == c::RunStatus::failed);
  CHECK(outcome.exit_code() == 1);
  CHECK_THAT(outcome.message, Catch::Contains("no board address"));
  const json state = read(options.out_dir / c::kStateFile);
  CHECK(state["steps"][0]["status"] == "failed");
  CHECK(read(options.out_dir / c::kRecordFile)["status"] == "failed");
  fs::remove_all(options.out_dir);
}
