// The campaigns of the tests that run one campaign in two ways (sequential, --jobs, Slurm:
// docs/cluster.md), and the comparison of their run directories (docs/run-records.md).
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/app/support/process.hpp"

namespace metaplast::test {

inline nlohmann::json read_json(const std::filesystem::path& file) {
  return nlohmann::json::parse(read_file(file));
}

// A sweep of 3 m* x 2 seeds at tiny scale (1-thread train steps of `epochs` epochs per task), its
// evaluation and a report: 8 units in 3 stages.
inline void write_sweep_campaign(const std::filesystem::path& file, int epochs = 1) {
  std::ofstream(file) << R"({
    "campaign": "sweep-test",
    "defaults": {"train": {"tasks": ["mnist", "fashion"], "epochs": )"
                      << epochs << R"(, "train-limit": 600,
                           "hidden": [32], "threads": 1}},
    "steps": [
      {"id": "sweep", "type": "repeat", "seeds": [1, 2],
       "step": {"type": "sweep", "parameter": "mstar", "values": [0, 1.5, 3],
                "step": {"type": "train"}}},
      {"id": "stats", "type": "evaluate", "runs": ["@sweep"]},
      {"id": "report", "type": "report"}]})";
}

// Three characterisations on the station's board (units 0, 2, 4: the board lane) between two
// software train steps (units 1, 3).
inline void write_lane_campaign(const std::filesystem::path& file) {
  std::ofstream(file) << R"({
    "campaign": "lane-test",
    "defaults": {"train": {"tasks": ["mnist"], "epochs": 1, "train-limit": 300, "hidden": [16],
                           "threads": 1}},
    "steps": [
      {"id": "char1", "type": "characterize", "cells": 40, "cycles": 3},
      {"id": "soft1", "type": "train", "seed": 1},
      {"id": "char2", "type": "characterize", "cells": 40, "cycles": 3, "seed": 2},
      {"id": "soft2", "type": "train", "seed": 2},
      {"id": "char3", "type": "characterize", "cells": 40, "cycles": 3, "seed": 3}]})";
}

// A station whose board is the in-process simulated board; with `nodelist`, its Slurm node.
inline void write_lane_station(const std::filesystem::path& file,
                               const std::string& nodelist = "") {
  std::ofstream out(file);
  out << R"({"station": "lane-test",
    "instruments": {"array": {"type": "array-board", "address": "sim:?seed=5&formed=1"}})";
  if (!nodelist.empty()) out << R"(, "slurm": {"nodelist": ")" << nodelist << R"("})";
  out << "}";
}

// The board lane's units (0, 2, 4 of write_lane_campaign) ran one after another, in plan order:
// each started after the previous one finished. Returns the Slurm job of each.
inline std::vector<std::string> require_lane_in_order(const std::filesystem::path& dir) {
  const nlohmann::json state = read_json(dir / "state.json");
  std::string previous_end;
  std::vector<std::string> jobs;
  for (const std::size_t i : {0, 2, 4}) {
    const auto& s = state["steps"][i];
    INFO(s.dump());
    REQUIRE(s["status"] == "done");
    CHECK(previous_end <= s["attempt"]["started"].get<std::string>());
    previous_end = s["finished"];
    jobs.push_back(s["attempt"].value("slurm_job", ""));
  }
  return jobs;
}

// Every step of both runs done, with equal results in state.json, and equal metrics.csv,
// evaluation.json and per_epoch.csv: every number a run records (times, process ids and
// throughput figures aside).
inline void require_same_numbers(const std::filesystem::path& a, const std::filesystem::path& b) {
  const nlohmann::json sa = read_json(a / "state.json"), sb = read_json(b / "state.json");
  REQUIRE(sa["steps"].size() == sb["steps"].size());
  for (std::size_t i = 0; i < sa["steps"].size(); ++i) {
    INFO(sa["steps"][i]["id"]);
    CHECK(sa["steps"][i]["status"] == "done");
    CHECK(sb["steps"][i]["status"] == "done");
    CHECK(sa["steps"][i]["result"] == sb["steps"][i]["result"]);
    const std::filesystem::path dir =
        std::filesystem::path("steps") / sa["steps"][i]["id"].get<std::string>();
    for (const char* f : {"metrics.csv", "evaluation.json", "per_epoch.csv"}) {
      INFO(f);
      CHECK(std::filesystem::exists(a / dir / f) == std::filesystem::exists(b / dir / f));
      if (std::filesystem::exists(a / dir / f))
        CHECK(read_file(a / dir / f) == read_file(b / dir / f));
    }
  }
}

}  // namespace metaplast::test
