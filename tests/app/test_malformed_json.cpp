// The malformed-input matrix of the JSON files (issue 19, item 7): every file kind the product
// reads x every class of fault. Each must give one error that names the file and says what is
// wrong: no crash, no silent accept, no message without the file. The loaders share one reader
// (common/json_file.hpp); their value checks are their own.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "app/campaign/campaign.hpp"
#include "app/hil/chip_registry.hpp"
#include "common/json_file.hpp"
#include "instruments/station_limits.hpp"
#include "devices/calibration.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace metaplast;

namespace {

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";

void write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
}

// One file kind: a valid document, how to load a file of it (the message of the error, or ""
// when it loaded), and where its faults go.
struct FileKind {
  std::string name;
  json valid;
  std::string file_name;
  std::function<std::string(const fs::path&)> load;
  json::json_pointer integer_field;     // an integer option with a range
  std::string range_words;              // in the out-of-range message
  json::json_pointer required_field;    // erased for "missing required key"
  std::string missing_words;            // in that message
  json::json_pointer options_object{};  // where an unknown key is added
};

template <typename F>
std::string error_of(F&& load) {
  try {
    load();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A config.json on `metaplast train --resume`: the real binary's message.
std::string resume_error(const fs::path& config_file) {
  const fs::path log = config_file.parent_path() / "resume.log";
  const pid_t pid =
      test::spawn(kBinary, {kBinary, "train", "--resume", config_file.parent_path().string()}, log);
  const int code = test::wait_exit(pid);
  const std::string output = test::read_file(log);
  if (code == 0) return "";
  // A signal (crash) is not an error message.
  return code > 0 ? output : "crashed: " + output;
}

std::vector<FileKind> file_kinds() {
  std::vector<FileKind> kinds;
  kinds.push_back(
      {"station", json::parse(R"({"station": "bench", "chip": "W1",
         "instruments": {"array": {"type": "array-board", "address": "sim:?seed=1"}},
         "limits": {"max_read_voltage_v": 0.3, "max_pulses_per_verify": 100}})"),
       "station.json",
       [](const fs::path& f) { return error_of([&] { instruments::load_station(f); }); },
       json::json_pointer("/limits/max_pulses_per_verify"), "1..1000000",
       json::json_pointer("/instruments/array/address"), "is missing"});
  kinds.push_back({"campaign", json::parse(R"({"campaign": "c", "steps": [
         {"id": "char", "type": "characterize", "device": "sim:?seed=1", "cells": 10, "cycles": 2},
         {"id": "t", "type": "train", "epochs": 1, "train-limit": 100}]})"),
                   "campaign.json",
                   [](const fs::path& f) { return error_of([&] { campaign::load_campaign(f); }); },
                   json::json_pointer("/steps/1/epochs"), "1..100000",
                   json::json_pointer("/campaign"), "missing"});
  kinds.push_back({"calibration",
                   json::parse(devices::calibration_to_json(devices::Calibration::defaults())),
                   "calibration.json",
                   [](const fs::path& f) { return error_of([&] { devices::load_calibration(f); }); },
                   json::json_pointer("/schema_version"), "schema version 1",
                   json::json_pointer("/lcs"), "missing"});
  kinds.push_back(
      {"chip registry", json::parse(hil::chip_record_to_json(hil::ChipRecord::fresh("c1", 4, 4))),
       "c1.json",
       [](const fs::path& f) {
         return error_of([&] { hil::ChipRegistry(f.parent_path()).load("c1"); });
       },
       json::json_pointer("/geometry/rows"), "1..1024", json::json_pointer("/chip_id"), "missing"});
  // A config.json written by a run: the options of a tiny run (never trained: the resume stops
  // at the config).
  json config = json::parse(R"({"options": {"tasks": ["mnist"], "epochs": 1, "mstar": 1,
    "rule": "interval", "hidden": [8], "levels": 4, "init": 0.1, "bn": "per-task",
    "bn-stats": "running", "lr": 0.005, "batch": 10, "seed": 1, "train-limit": 20,
    "validation": 0, "threads": 1, "data": "/nonexistent"}})");
  kinds.push_back({"config.json on resume", config, "config.json", resume_error,
                   json::json_pointer("/options/epochs"), "1..100000",
                   json::json_pointer("/options/tasks"), "missing option 'tasks'",
                   json::json_pointer("/options")});
  return kinds;
}

// The faults: a name, the file's text, and words the message must contain.
struct Fault {
  std::string name;
  std::string text;
  std::vector<std::string> words;
};

std::vector<Fault> faults_of(const FileKind& kind) {
  const std::string valid = kind.valid.dump(2);
  std::vector<Fault> faults;
  faults.push_back({"not JSON", "station = bench\nlimits = 0.3\n", {"line 1", "syntax error"}});
  faults.push_back({"truncated", valid.substr(0, valid.size() / 2), {"syntax error"}});
  faults.push_back({"deep nesting", std::string(100'000, '['), {"nested deeper than 64"}});
  // The reader sees the duplicate before any loader looks at the keys.
  faults.push_back({"duplicate key",
                    "{\"comment\": \"a\", \"comment\": \"b\", " + valid.substr(1),
                    {"/comment", "twice"}});
  json wrong_type = kind.valid;
  wrong_type[kind.integer_field] = "12";
  faults.push_back({"wrong type", wrong_type.dump(2), {kind.integer_field.back()}});
  json out_of_range = kind.valid;
  out_of_range[kind.integer_field] = 4294967297;  // wraps to 1 in 32 bits
  faults.push_back({"out-of-range number", out_of_range.dump(2), {kind.range_words}});
  std::string overflow = out_of_range.dump(2);
  overflow.replace(overflow.find("4294967297"), 10, "1e400");
  faults.push_back({"number overflow (1e400)", overflow, {"number overflow", "1e400", "line"}});
  json unknown = kind.valid;
  unknown[kind.options_object]["bogus_key"] = 1;
  faults.push_back({"unknown key", unknown.dump(2), {"bogus_key"}});
  json missing = kind.valid;
  missing[kind.required_field.parent_pointer()].erase(kind.required_field.back());
  faults.push_back({"missing required key", missing.dump(2), {kind.missing_words}});
  faults.push_back({"empty file", "", {"empty"}});
  std::string garbage(512, '\0');
  std::mt19937 rng(19);
  for (char& c : garbage) c = static_cast<char>(rng());
  faults.push_back({"binary garbage", garbage, {}});
  return faults;
}

}  // namespace

TEST_CASE("every JSON file kind x every fault: one clear error naming the file") {
  const fs::path dir = test::scratch_path("metaplast-malformed", "matrix");
  for (const FileKind& kind : file_kinds()) {
    // The valid document loads (else every fault below would pass for the wrong reason). A
    // config.json on resume stops later, at the data directory that does not exist.
    const fs::path valid_file = dir / kind.name / "valid" / kind.file_name;
    write(valid_file, kind.valid.dump(2));
    const std::string valid_error = kind.load(valid_file);
    INFO(kind.name << " valid: " << valid_error);
    if (kind.name == "config.json on resume") {
      // Past config.json: the run (no checkpoint yet, so started over) stops at the data.
      CHECK_THAT(valid_error, Catch::Contains("dataset file /nonexistent"));
    } else {
      CHECK(valid_error.empty());
    }
    for (const Fault& fault : faults_of(kind)) {
      const fs::path file = dir / kind.name / fault.name / kind.file_name;
      write(file, fault.text);
      const std::string message = kind.load(file);
      INFO(kind.name << " / " << fault.name << ": " << message);
      REQUIRE_FALSE(message.empty());  // no silent accept
      CHECK(message.find("crashed") != 0);
      CHECK(message.find(file.string()) != std::string::npos);
      for (const auto& word : fault.words) CHECK(message.find(word) != std::string::npos);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("campaign values out of range, and unknown addresses, fail at check time") {
  const auto error_for = [](const std::string& step) {
    const std::string text = R"({"campaign": "c", "steps": [)" + step + "]}";
    return error_of([&] { campaign::parse_campaign_text(text, "c.json"); });
  };
  CHECK_THAT(error_for(R"({"type": "train", "hidden": [1000000000, 1000000000]})"),
             Catch::Contains("c.json: /steps/0/hidden/0") && Catch::Contains("1..1000000"));
  CHECK_THAT(error_for(R"({"type": "train", "threads": 100000})"),
             Catch::Contains("/steps/0/threads") && Catch::Contains("1..1024"));
  CHECK_THAT(error_for(R"({"type": "train", "epochs": 4294967297})"),
             Catch::Contains("/steps/0/epochs") && Catch::Contains("1..100000"));
  CHECK_THAT(error_for(R"({"type": "characterize", "cells": 1000000})"),
             Catch::Contains("/steps/0/cells") && Catch::Contains("2..65536"));
  CHECK_THAT(error_for(R"({"type": "characterize", "cells": 1e6})"),
             Catch::Contains("/steps/0/cells"));
  CHECK_THAT(error_for(R"({"type": "characterize", "device": "gpib:5"})"),
             Catch::Contains("/steps/0/device") && Catch::Contains("unknown scheme 'gpib:'") &&
                 Catch::Contains("sim:?seed=1"));
  CHECK_THAT(
      error_for(R"({"type": "train", "device": "sim:?sed=1"})"),
      Catch::Contains("/steps/0/device") && Catch::Contains("sed") && Catch::Contains("seed"));
  // A swept value is checked as the option itself.
  CHECK_THAT(error_for(R"({"type": "sweep", "parameter": "threads", "values": [1, 5000],
                           "step": {"type": "train"}})"),
             Catch::Contains("/steps/0/values/1") && Catch::Contains("1..1024"));
}

TEST_CASE("campaign keys: hyphens as on the command line, old underscores with a warning") {
  const auto c = campaign::parse_campaign_text(
      R"({"campaign": "c", "steps": [{"id": "a", "type": "characterize", "cells": 10,
          "cycles": 2, "read_repeats": 2, "read-cells": 5}]})",
      "c.json");
  REQUIRE(c.steps.size() == 1);
  CHECK(c.steps[0].options["read-repeats"] == 2);
  CHECK_FALSE(c.steps[0].options.contains("read_repeats"));
  REQUIRE(c.warnings.size() == 1);
  CHECK_THAT(c.warnings[0],
             Catch::Contains("/steps/0/read_repeats") && Catch::Contains("write \"read-repeats\""));
  // Both spellings of one key: which one wins would be a guess.
  CHECK_THROWS_WITH(campaign::parse_campaign_text(
                        R"({"campaign": "c", "steps": [{"type": "characterize", "cells": 10,
                            "cycles": 2, "read_repeats": 2, "read-repeats": 3}]})",
                        "c.json"),
                    Catch::Contains("given twice"));
}

TEST_CASE("the strict reader: paths in messages, integers range-checked before narrowing") {
  CHECK_THROWS_WITH(common::parse_json_text(R"({"a": {"b": [1, {"c": 1, "c": 2}]}})", "f.json"),
                    Catch::Contains("f.json: /a/b/1/c: key given twice"));
  CHECK_THROWS_WITH(common::parse_json_text("{\n  \"a\": 1e400\n}", "f.json"),
                    Catch::Contains("f.json: line 2") && Catch::Contains("number overflow"));
  // 64 levels are fine, 65 are not.
  CHECK_NOTHROW(common::parse_json_text(std::string(64, '[') + std::string(64, ']'), "f.json"));
  CHECK_THROWS_WITH(common::parse_json_text(std::string(65, '[') + std::string(65, ']'), "f.json"),
                    Catch::Contains("nested deeper than 64"));
  const json big = json::parse("[4294967297, 1e19, -1, 2.5, 7]");
  for (int i = 0; i < 4; ++i) {
    CHECK_THROWS_WITH(common::integer_in_range(big[i], "f.json", "/x", 0, 100),
                      Catch::Contains("f.json: /x: expected an integer in 0..100"));
  }
  CHECK(common::integer_in_range(big[4], "f.json", "/x", 0, 100) == 7);
  CHECK(common::integer_in_range(json::parse("1e2"), "f.json", "/x", 0, 100) == 100);
}

TEST_CASE("issue 19 reproducers: duplicate limits, deep nesting in a nested value") {
  // The last "limits" used to win: 99 V on the bit line.
  CHECK_THROWS_WITH(instruments::station_from_text(R"({"limits": {"max_bl_voltage_v": 3.6},
                                        "limits": {"max_bl_voltage_v": 99}})",
                                                   "bench.json"),
                    Catch::Contains("bench.json: /limits: key given twice"));
  // ~100,000 nested arrays inside a value overflowed the stack (SIGSEGV).
  const std::string deep = R"({"campaign": "c", "steps": )" + std::string(100'000, '[');
  CHECK_THROWS_WITH(
      campaign::parse_campaign_text(deep, "c.json"),
      Catch::Contains("c.json: /steps/0/0") && Catch::Contains("nested deeper than 64 levels"));
}
