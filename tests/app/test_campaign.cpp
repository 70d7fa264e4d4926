// Campaign files: the shipped campaigns pass `check`, the plan expands sweeps and repeats with
// their links, and every malformed input class gives its documented message (docs/campaigns.md
// "Errors"), naming the file, the JSON path and what was expected.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "app/campaign/campaign.hpp"

namespace fs = std::filesystem;
using metaplast::campaign::CampaignError;
using metaplast::campaign::format_plan;
using metaplast::campaign::load_campaign;
using metaplast::campaign::parse_campaign;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

std::string error_for(const std::string& text) {
  return message_of([&] { parse_campaign(nlohmann::json::parse(text), "camp.json"); });
}

}  // namespace

TEST_CASE("the shipped campaigns pass check, with their steps expanded and linked") {
  const auto quick = load_campaign(METAPLAST_SOURCE_DIR "/campaigns/quick.json");
  CHECK(quick.name == "quick");
  // char + 2 m* values + 2 seeds + evaluate + report.
  REQUIRE(quick.steps.size() == 7);
  CHECK(quick.steps[1].id == "sweep/mstar=0");
  CHECK(quick.steps[2].id == "sweep/mstar=3");
  CHECK(quick.steps[2].options["mstar"] == 3);
  CHECK(quick.steps[2].options["epochs"] == 1);  // from the campaign's defaults
  CHECK(quick.steps[3].id == "repeats/seed=1");
  CHECK(quick.steps[4].options["seed"] == 2);
  CHECK(quick.steps[5].type == "evaluate");
  CHECK(quick.steps[5].links.size() == 4);
  CHECK(quick.steps[0].device_operations > 0);
  const std::string plan = format_plan(quick);
  CHECK_THAT(plan, Catch::Contains("runs <- @sweep") && Catch::Contains("total: 7 steps"));

  const auto paper = load_campaign(METAPLAST_SOURCE_DIR "/campaigns/paper.json");
  // fig4b + 10 m* values + table + 15 repeats + stats + fig5b + report.
  CHECK(paper.steps.size() == 30);
  const auto& hybrid = paper.steps[12];
  CHECK(hybrid.id == "fig5a/seed=1");
  CHECK(hybrid.options["epochs"] == 50);
  REQUIRE(hybrid.links.size() == 1);
  CHECK(hybrid.links[0].option == "calibration");
  CHECK(hybrid.links[0].from == "fig4b");
  CHECK(hybrid.options["calibration"] == "steps/fig4b/calibration.json");
  CHECK_THAT(format_plan(paper),
             Catch::Contains("calibration <- @fig4b.calibration  (steps/fig4b/calibration.json)"));
  CHECK(paper.uses_board());
  CHECK_FALSE(load_campaign(METAPLAST_SOURCE_DIR "/campaigns/quick.json").seeds().empty());
}

TEST_CASE("a campaign file that is not there or not JSON is refused naming the file") {
  CHECK_THAT(message_of([] { load_campaign("/nonexistent/c.json"); }),
             Catch::Contains("/nonexistent/c.json"));
  const fs::path bad = fs::temp_directory_path() / "metaplast_campaign_bad.json";
  std::ofstream(bad) << "{\"campaign\": \"x\", \"steps\": [";
  CHECK_THAT(message_of([&] { load_campaign(bad); }),
             Catch::Contains(bad.string()) && Catch::Contains("not valid JSON"));
  fs::remove(bad);
}

TEST_CASE("every malformed campaign names the file, the JSON path and what was expected") {
  struct Case {
    const char* text;
    const char* path;
    const char* expected;
  };
  const Case cases[] = {
      {R"([])", "camp.json: /:", "JSON object"},
      {R"({"steps": [{"type": "report"}]})", "/campaign", "missing"},
      {R"({"campaign": "c"})", "/steps", "missing"},
      {R"({"campaign": "c", "steps": []})", "/steps", "non-empty array"},
      {R"({"campaign": "c", "step": [], "steps": [{"type": "report"}]})", "/step", "unknown key"},
      {R"({"campaign": "c", "steps": [{"id": "a"}]})", "/steps/0/type", "missing"},
      {R"({"campaign": "c", "steps": [{"type": "trian"}]})", "/steps/0/type",
       "unknown step type \"trian\""},
      {R"({"campaign": "c", "steps": [{"type": "train", "epoch": 2}]})", "/steps/0/epoch",
       "unknown train option"},
      {R"({"campaign": "c", "steps": [{"type": "train", "epochs": "2"}]})", "/steps/0/epochs",
       "expected an integer"},
      {R"({"campaign": "c", "steps": [{"type": "train", "mstar": [3]}]})", "/steps/0/mstar",
       "expected a number"},
      {R"({"campaign": "c", "steps": [{"type": "train", "tasks": ["mnist", 2]}]})",
       "/steps/0/tasks/1", "expected a string"},
      {R"({"campaign": "c", "steps": [{"type": "train", "train-limit": -5}]})",
       "/steps/0/train-limit", "non-negative integer"},
      // Integer ranges (shared with the command line) are checked at the key.
      {R"({"campaign": "c", "steps": [{"type": "train", "epochs": 0}]})", "/steps/0/epochs",
       "expected an integer in 1..100000"},
      {R"({"campaign": "c", "steps": [{"type": "characterize", "cycles": 1}]})", "/steps/0/cycles",
       "expected an integer in 2..100000"},
      // Other values are refused by the trainer's / characterisation's own validation.
      {R"({"campaign": "c", "steps": [{"type": "train", "lr-decay": 2}]})",
       "/steps/0:", "--lr-decay"},
      {R"({"campaign": "c", "steps": [{"type": "characterize", "read-repeats": 1}]})",
       "/steps/0:", "--read-repeats"},
      {R"({"campaign": "c", "steps": [{"id": "a b", "type": "report"}]})", "/steps/0/id",
       "[A-Za-z0-9_-]"},
      {R"({"campaign": "c", "steps": [{"id": "a", "type": "report"}, {"id": "a", "type": "report"}]})",
       "/steps/1/id", "duplicate step id \"a\""},
      {R"({"campaign": "c", "steps": [{"type": "train", "calibration": "@char1.calibration"}]})",
       "/steps/0/calibration", "dangling reference \"@char1.calibration\""},
      {R"({"campaign": "c", "steps": [{"type": "train", "calibration": "@c.calibration"},
                                      {"id": "c", "type": "characterize"}]})",
       "/steps/0/calibration", "runs later"},
      {R"({"campaign": "c", "steps": [{"id": "c", "type": "characterize"},
                                      {"type": "train", "calibration": "@c.calib"}]})",
       "/steps/1/calibration", "has no output \"calib\""},
      {R"({"campaign": "c", "steps": [{"id": "s", "type": "repeat", "count": 2,
                                       "step": {"type": "characterize"}},
                                      {"type": "train", "calibration": "@s.calibration"}]})",
       "/steps/1/calibration", "names 2 runs"},
      {R"({"campaign": "c", "steps": [{"type": "sweep", "parameter": "m_star", "values": [1],
                                       "step": {"type": "train"}}]})",
       "/steps/0/parameter", "cannot sweep \"m_star\""},
      {R"({"campaign": "c", "steps": [{"type": "sweep", "parameter": "mstar",
                                       "step": {"type": "train"}}]})",
       "/steps/0/values", "non-empty array"},
      {R"({"campaign": "c", "steps": [{"type": "sweep", "parameter": "mstar", "values": [1, "x"],
                                       "step": {"type": "train"}}]})",
       "/steps/0/values/1", "expected a number"},
      {R"({"campaign": "c", "steps": [{"type": "sweep", "parameter": "mstar", "values": [1, 1],
                                       "step": {"type": "train"}}]})",
       "/steps/0/values/1", "duplicate value"},
      {R"({"campaign": "c", "steps": [{"type": "sweep", "parameter": "mstar", "values": [1]}]})",
       "/steps/0/step", "nested step"},
      {R"({"campaign": "c", "steps": [{"type": "sweep", "parameter": "mstar", "values": [1],
                                       "step": {"type": "train", "mstar": 2}}]})",
       "/steps/0/step/mstar", "also set by the enclosing sweep"},
      {R"({"campaign": "c", "steps": [{"type": "repeat", "step": {"type": "train"}}]})",
       "/steps/0/count", "missing"},
      {R"({"campaign": "c", "steps": [{"type": "repeat", "count": 0, "step": {"type": "train"}}]})",
       "/steps/0/count", "1..10000"},
      {R"({"campaign": "c", "steps": [{"type": "repeat", "count": 2,
                                       "step": {"type": "train", "id": "x"}}]})",
       "/steps/0/step/id", "remove it"},
      {R"({"campaign": "c", "steps": [{"type": "repeat", "count": 2,
                                       "step": {"type": "report"}}]})",
       "/steps/0/step/type", "cannot be nested"},
      {R"({"campaign": "c", "steps": [{"type": "evaluate"}]})", "/steps/0/runs", "missing"},
      {R"({"campaign": "c", "steps": [{"id": "c", "type": "characterize"},
                                      {"type": "evaluate", "runs": "@c"}]})",
       "/steps/1/runs", "no train steps"},
      {R"({"campaign": "c", "steps": [{"type": "evaluate", "runs": ["@nothing"]}]})",
       "/steps/0/runs/0", "dangling reference"},
      {R"({"campaign": "c", "defaults": {"train": {"epochz": 1}}, "steps": [{"type": "report"}]})",
       "/defaults/train/epochz", "unknown train option"},
      {R"({"campaign": "c", "defaults": {"sweep": {}}, "steps": [{"type": "report"}]})",
       "/defaults/sweep", "defaults exist for \"train\", \"characterize\", \"forming\""},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const std::string message = error_for(c.text);
    CHECK_THAT(message, Catch::StartsWith("camp.json: ") && Catch::Contains(c.path) &&
                            Catch::Contains(c.expected));
    CHECK_THROWS_AS(parse_campaign(nlohmann::json::parse(c.text), "camp.json"), CampaignError);
  }
}

TEST_CASE("sweeps nest: a sweep inside a repeat expands to every combination") {
  const auto c = parse_campaign(nlohmann::json::parse(R"({"campaign": "n", "steps": [
      {"id": "r", "type": "repeat", "seeds": [5, 9], "step":
        {"type": "sweep", "parameter": "mstar", "values": [0, 2.2], "step":
          {"type": "train", "epochs": 1}}}]})"),
                                "n.json");
  REQUIRE(c.steps.size() == 4);
  CHECK(c.steps[0].id == "r/seed=5/mstar=0");
  CHECK(c.steps[3].id == "r/seed=9/mstar=2.2");
  CHECK(c.steps[3].options["seed"] == 9);
  CHECK(c.steps[3].parameters == nlohmann::json({{"seed", 9}, {"mstar", 2.2}}));
  CHECK(c.seeds() == std::vector<std::uint64_t>{5, 5, 9, 9});
}
