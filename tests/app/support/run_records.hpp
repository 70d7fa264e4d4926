// Comparing the numbers of two campaign run directories (docs/run-records.md), for the tests
// that run one campaign in two ways (sequential, --jobs, Slurm) and expect the same record.
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/app/support/process.hpp"

namespace metaplast::test {

inline nlohmann::json read_json(const std::filesystem::path& file) {
  return nlohmann::json::parse(read_file(file));
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
