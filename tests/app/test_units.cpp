// Work units of a campaign plan (app/campaign/units.hpp, docs/cluster.md): what waits on what,
// the stages, and which units share the board lane.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "app/campaign/campaign.hpp"
#include "app/campaign/units.hpp"

using namespace metaplast::campaign;
using nlohmann::json;

namespace {

Campaign parse(const char* text) { return parse_campaign(json::parse(text), "test.json"); }

std::vector<std::size_t> v(std::initializer_list<std::size_t> list) { return list; }

}  // namespace

TEST_CASE("a sweep, its evaluation and a report: three stages, software only") {
  const Campaign c = parse(R"({"campaign": "t",
    "defaults": {"train": {"threads": 2}},
    "steps": [
      {"id": "sweep", "type": "sweep", "parameter": "mstar", "values": [0, 3],
       "step": {"type": "train"}},
      {"id": "single", "type": "train", "threads": 1},
      {"id": "stats", "type": "evaluate", "runs": ["@sweep"]},
      {"id": "report", "type": "report"}]})");
  const auto units = plan_units(c.steps);
  REQUIRE(units.size() == 5);
  CHECK(units[0].waits_on.empty());
  CHECK(units[1].waits_on.empty());
  CHECK(units[2].waits_on.empty());
  CHECK(units[3].waits_on == v({0, 1}));        // the evaluation waits on the sweep's runs only
  CHECK(units[4].waits_on == v({0, 1, 2, 3}));  // the report on everything before it
  CHECK(units[0].stage == 0);
  CHECK(units[2].stage == 0);
  CHECK(units[3].stage == 1);
  CHECK(units[4].stage == 2);
  CHECK(stage_count(units) == 3);
  for (const auto& u : units) CHECK_FALSE(u.board);
  CHECK(units[0].threads == 2);
  CHECK(units[2].threads == 1);
  CHECK(max_threads(units) == 2);
  const std::string text = format_units(c.steps, units);
  CHECK(text.find("5 in 3 stages") != std::string::npos);
  CHECK(text.find("waits on every earlier unit") != std::string::npos);
}

TEST_CASE(
    "the board lane: the station's board, tcp boards and chip records; in-process sim is not") {
  const Campaign c = parse(R"({"campaign": "t",
    "steps": [
      {"id": "char", "type": "characterize"},
      {"id": "simchar", "type": "characterize", "device": "sim:?seed=2"},
      {"id": "kept", "type": "characterize", "device": "sim:?seed=3", "chips-dir": "chips"},
      {"id": "hybrid", "type": "train", "placement": "virtual,virtual,board",
       "calibration": "@char.calibration"},
      {"id": "tcp", "type": "train", "placement": "board", "device": "tcp:127.0.0.1:5555"},
      {"id": "soft", "type": "train", "calibration": "@simchar.calibration",
       "placement": "virtual"},
      {"id": "stats", "type": "evaluate", "runs": ["@hybrid", "@soft"]}]})");
  const auto units = plan_units(c.steps);
  CHECK(units[0].board);
  CHECK_FALSE(units[1].board);
  CHECK(units[2].board);
  CHECK(units[3].board);
  CHECK(units[4].board);
  CHECK_FALSE(units[5].board);
  CHECK_FALSE(units[6].board);
  // Each board unit waits on the previous one (plan order), and shares its stage: one job.
  CHECK(units[2].waits_on == v({0}));
  CHECK(units[3].waits_on == v({0, 2}));
  CHECK(units[4].waits_on == v({3}));
  for (std::size_t i : {0, 2, 3, 4}) CHECK(units[i].stage == 0);
  CHECK(units[5].waits_on == v({1}));
  CHECK(units[5].stage == 1);
  CHECK(units[6].waits_on == v({3, 5}));
  CHECK(units[6].stage == 2);
}

TEST_CASE("a board unit after a software unit it needs moves to a later stage") {
  const Campaign c = parse(R"({"campaign": "t",
    "steps": [
      {"id": "soft", "type": "characterize", "device": "sim:?seed=2"},
      {"id": "char", "type": "characterize", "base-calibration": "@soft.calibration"},
      {"id": "board2", "type": "characterize"}]})");
  const auto units = plan_units(c.steps);
  CHECK(units[1].board);
  CHECK(units[1].stage == 1);
  CHECK(units[2].waits_on == v({1}));
  CHECK(units[2].stage == 1);  // the lane's order, in the same board job
}

TEST_CASE("units are named by step id or plan position") {
  const Campaign c = parse(R"({"campaign": "t",
    "steps": [{"id": "a", "type": "train"}, {"id": "b", "type": "train"}]})");
  CHECK(find_unit(c.steps, "b") == 1);
  CHECK(find_unit(c.steps, "0") == 0);
  for (const char* bad : {"2", "c", "", "-1", "1x"}) {
    INFO(bad);
    CHECK_THROWS_WITH(find_unit(c.steps, bad),
                      Catch::Contains("give a step id or its position 0..1"));
  }
}
