#include "app/campaign/campaign.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "app/bench/cell_map.hpp"
#include "app/bench/endurance.hpp"
#include "app/bench/forming.hpp"
#include "app/bench/options.hpp"
#include "app/bench/read_disturb.hpp"
#include "app/bench/retention.hpp"
#include "app/bench/window.hpp"
#include "app/board/board_session.hpp"
#include "app/hil/characterize.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/train_config.hpp"
#include "app/util/progress.hpp"
#include "common/json_file.hpp"
#include "devices/board_timing.hpp"
#include "drivers/transport_factory.hpp"
#include "instruments/board_settings.hpp"

namespace metaplast::campaign {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Rough host speed for the time estimate of a train step: multiply-adds per second of one
// thread in the trainer's forward and backward passes (measured on the development machine
// with the default network, docs/campaigns.md "Estimates").
constexpr double kHostMultiplyAddsPerSecond = 3.0e9;
constexpr double kTestImagesPerTask = 10000;
constexpr double kTrainImagesPerTask = 60000;
constexpr double kStatesPerCycle = 9;  // LCS and the 8 I_CC levels of the board

[[noreturn]] void fail(const std::string& where, const std::string& path, const std::string& what) {
  throw CampaignError(where + ": " + (path.empty() ? std::string("/") : path) + ": " + what);
}

std::string describe(const json& v) { return common::describe_json(v); }

// Every step type, in the order the messages list them.
const std::vector<std::string> kStepTypeNames = {
    "characterize", "train",  "sweep",     "repeat",       "evaluate",  "report",   "forming",
    "cell-map",     "window", "retention", "read-disturb", "endurance", "calibrate"};
const std::set<std::string> kStepTypes(kStepTypeNames.begin(), kStepTypeNames.end());

// "characterize, train, ... or calibrate"
std::string step_type_list(const char* last_joiner) {
  std::string list;
  for (std::size_t i = 0; i < kStepTypeNames.size(); ++i) {
    if (i) list += i + 1 == kStepTypeNames.size() ? last_joiner : ", ";
    list += kStepTypeNames[i];
  }
  return list;
}

json train_defaults() {
  json j = learning::TrainConfig{}.to_json();
  j["data"] = "";  // "": the default data directory at run time
  return j;
}

// Keys are spelled as the command-line options (hyphens); "read_repeats" etc. are accepted as
// old spellings with a warning (canonical_key).
json characterize_defaults() {
  const hil::CharacterizeOptions o;
  return {{"cells", o.cells},
          {"cycles", o.cycles},
          {"read-repeats", o.read_repeats},
          {"read-cells", o.read_cells},
          {"seed", o.seed},
          {"formed-threshold-us", o.formed_threshold_us},
          {"outlier-z", 6.0},
          {"device", ""},
          {"chip", ""},
          {"base-calibration", ""},
          {"chips-dir", ""},
          {"board-settings", json::object()}};
}

// The accepted range of an integer option of a train or characterize step: the command line's
// (learning::integer_option_range, hil::kMax...), or nullptr when any value of its type is fine.
const learning::IntegerRange* integer_range(const std::string& type, const std::string& key) {
  if (type == "train") return learning::integer_option_range(key);
  static const std::map<std::string, learning::IntegerRange> characterize = {
      {"cells", {2, hil::kMaxCharacterizeCells}},
      {"cycles", {2, hil::kMaxCharacterizeCycles}},
      {"read-repeats", {0, hil::kMaxReadRepeats}},
      {"read-cells", {0, hil::kMaxCharacterizeCells}}};
  if (type != "characterize") return nullptr;
  const auto it = characterize.find(key);
  return it == characterize.end() ? nullptr : &it->second;
}

// A measurement step: its options (bench::to_json of the defaults) and the board's.
json measurement_defaults(const std::string& type) {
  json d = type == "retention"   ? bench::to_json(bench::RetentionOptions{})
           : type == "forming"   ? bench::to_json(bench::FormingOptions{})
           : type == "cell-map"  ? bench::to_json(bench::CellMapOptions{})
           : type == "window"    ? bench::to_json(bench::WindowOptions{})
           : type == "endurance" ? bench::to_json(bench::EnduranceOptions{})
                                 : bench::to_json(bench::ReadDisturbOptions{});
  d["device"] = "";
  d["chip"] = "";
  d["board-settings"] = json::object();
  if (type == "read-disturb" || type == "forming") d["base-calibration"] = "";
  return d;
}

json defaults_for(const std::string& type) {
  if (type == "train") {
    json d = train_defaults();
    for (const auto& key : kHardwareTrainOptions) {
      if (!d.contains(key)) d[key] = "";
    }
    d["board-settings"] = json::object();
    return d;
  }
  if (type == "characterize") return characterize_defaults();
  if (is_measurement_step(type)) return measurement_defaults(type);
  return json::object();
}

std::string known_keys(const json& defaults) {
  std::string s;
  for (const auto& [k, v] : defaults.items()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

// The value must have the type of the option's default (ranges: check_option).
void check_type(const json& def, const json& v, const std::string& where, const std::string& path) {
  auto expected = [&](const std::string& what) {
    fail(where, path, "expected " + what + ", got " + describe(v));
  };
  if (def.is_string()) {
    if (!v.is_string()) expected("a string");
  } else if (def.is_boolean()) {
    if (!v.is_boolean()) expected("true or false");
  } else if (def.is_number_unsigned()) {
    if (!v.is_number_integer() ||
        (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0)) {
      expected("a non-negative integer");
    }
  } else if (def.is_number_integer()) {
    if (!v.is_number_integer()) expected("an integer");
  } else if (def.is_number()) {
    if (!v.is_number()) expected("a number");
  } else if (def.is_array()) {
    if (!v.is_array()) expected("an array (e.g. " + def.dump() + ")");
    if (!def.empty()) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        check_type(def[0], v[i], where, path + "/" + std::to_string(i));
      }
    }
  }
}

// "0.5" for 0.5, "256x128" for [256,128], "abc" for "abc": a directory-name-safe form.
std::string value_label(const json& v) {
  std::string s;
  if (v.is_string()) {
    s = v.get<std::string>();
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (!s.empty()) s += 'x';
      s += value_label(e);
    }
  } else {
    s = v.dump();
  }
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return s;
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

struct TopStep {
  std::size_t index = 0;
  std::string type;
  std::vector<std::size_t> leaves;  // indices into Campaign::steps
};

// A train leaf's trainer configuration as the runner builds it (a linked file is made by an
// earlier step: a placeholder here, checked when the step runs).
learning::TrainConfig leaf_train_config(const PlannedStep& leaf) {
  json t = leaf.options;
  for (const auto& key : kHardwareTrainOptions) {
    if (!train_defaults().contains(key)) t.erase(key);
  }
  for (const auto& link : leaf.links) t[link.option] = "";
  if (t["data"] == "") t["data"] = learning::default_data_dir().string();
  return learning::TrainConfig::from_json(t);
}

// The board's time of a train leaf with layers on the board (docs/campaigns.md "Board time"):
// device operations, board time (device_seconds) and link time over a UART and over TCP.
void estimate_board_store(PlannedStep& leaf, const hil::LevelChangeModel& model) {
  const auto config = leaf_train_config(leaf);
  const auto settings = instruments::with_values(
      {},
      instruments::setting_values_from_json(leaf.options.value("board-settings", json::object()),
                                            "campaign", leaf.json_path + "/board-settings"));
  const auto shape =
      hil::board_training_shape(config, settings, static_cast<std::size_t>(kTrainImagesPerTask));
  leaf.board_store = !shape.board_layer_devices.empty();
  leaf.device_operations_known = true;
  if (!leaf.board_store) return;
  const hil::BoardWork work = hil::estimate_board_training(shape, model);
  leaf.device_operations = work.operations();
  leaf.device_seconds = work.board_ns * 1e-9;
  leaf.link_seconds_uart = work.link_ns(devices::LinkModel::uart()) * 1e-9;
  leaf.link_seconds_tcp = work.link_ns(devices::LinkModel::tcp()) * 1e-9;
  leaf.level_change_source = model.source;
}

class Expander {
 public:
  Expander(Campaign& campaign, std::string where) : c_(campaign), where_(std::move(where)) {
    board::register_sim_scheme();  // so that check_address knows sim: addresses
  }

  void run(const json& doc) {
    if (!doc.is_object()) fail(where_, "", "a campaign must be a JSON object with \"steps\"");
    for (const auto& [key, v] : doc.items()) {
      if (key == "campaign") {
        if (!v.is_string() || v.get<std::string>().empty()) {
          fail(where_, "/campaign",
               "expected a non-empty string (the campaign's name), got " + describe(v));
        }
        c_.name = v.get<std::string>();
      } else if (key == "description" || key == "comment") {
        if (!v.is_string()) fail(where_, "/" + key, "expected a string, got " + describe(v));
        if (key == "description") c_.description = v.get<std::string>();
      } else if (key == "defaults") {
        read_defaults(v);
      } else if (key != "steps") {
        fail(where_, "/" + key,
             "unknown key (expected \"campaign\", \"description\", \"defaults\", \"steps\")");
      }
    }
    if (!doc.contains("campaign")) fail(where_, "/campaign", "missing (the campaign's name)");
    if (!doc.contains("steps")) fail(where_, "/steps", "missing (a list of steps)");
    const json& steps = doc["steps"];
    if (!steps.is_array() || steps.empty()) {
      fail(where_, "/steps", "expected a non-empty array of steps, got " + describe(steps));
    }
    // All top-level ids first, so a reference to a later step is told apart from a typo.
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const std::string path = "/steps/" + std::to_string(i);
      if (!steps[i].is_object())
        fail(where_, path, "expected a step object, got " + describe(steps[i]));
      const std::string id = top_id(steps[i], i, path);
      if (!all_ids_.emplace(id, i).second) {
        fail(where_, path + "/id",
             "duplicate step id \"" + id + "\" (also /steps/" + std::to_string(all_ids_.at(id)) +
                 ")");
      }
    }
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const std::string path = "/steps/" + std::to_string(i);
      const std::string id = top_id(steps[i], i, path);
      TopStep top;
      top.index = i;
      top.type = step_type(steps[i], path);
      const std::size_t first = c_.steps.size();
      expand(steps[i], path, id, id, json::object(), json::object(), true);
      for (std::size_t k = first; k < c_.steps.size(); ++k) top.leaves.push_back(k);
      done_.emplace(id, top);
    }
  }

 private:
  Campaign& c_;
  std::string where_;
  json defaults_ = json::object();  // per leaf type
  std::map<std::string, std::size_t> all_ids_;
  std::map<std::string, TopStep> done_;

  void read_defaults(const json& v) {
    if (!v.is_object()) fail(where_, "/defaults", "expected an object {\"train\": {...}}");
    for (const auto& [type, options] : v.items()) {
      const std::string path = "/defaults/" + type;
      if (type != "train" && type != "characterize" && !is_measurement_step(type)) {
        std::string list = "\"train\", \"characterize\"";
        for (const auto& t : kStepTypeNames) {
          if (is_measurement_step(t)) list += ", \"" + t + "\"";
        }
        fail(where_, path, "defaults exist for " + list + " steps only");
      }
      if (!options.is_object()) fail(where_, path, "expected an object of options");
      const json known = defaults_for(type);
      json canonical = json::object();
      for (const auto& [written, value] : options.items()) {
        const std::string key = checked_option(type, known, written, value, path, canonical);
        canonical[key] = value;
      }
      defaults_[type] = canonical;
    }
  }

  // "read_repeats" -> "read-repeats": the hyphenated spelling (as on the command line) when the
  // written key is an old underscore spelling of a known option; the key as written otherwise.
  std::string canonical_key(const std::string& written, const json& known,
                            const std::string& path) {
    if (known.contains(written)) return written;
    std::string hyphenated = written;
    std::replace(hyphenated.begin(), hyphenated.end(), '_', '-');
    if (!known.contains(hyphenated)) return written;
    const std::string warning = path + "/" + written + ": old spelling, write \"" + hyphenated +
                                "\" (keys are spelled as the command-line options)";
    if (std::find(c_.warnings.begin(), c_.warnings.end(), warning) == c_.warnings.end()) {
      c_.warnings.push_back(warning);
    }
    return hyphenated;
  }

  // Type, then the option's range (shared with the command line), then a board address.
  void check_option(const std::string& type, const std::string& key, const json& def,
                    const json& value, const std::string& path) {
    check_type(def, value, where_, path);
    if (const auto* range = integer_range(type, key)) {
      const auto check_one = [&](const json& v, const std::string& at) {
        try {
          common::integer_in_range(v, where_, at, range->min, range->max);
        } catch (const common::JsonFileError& e) {
          throw CampaignError(e.what());
        }
      };
      if (value.is_array()) {
        for (std::size_t i = 0; i < value.size(); ++i) {
          check_one(value[i], path + "/" + std::to_string(i));
        }
      } else {
        check_one(value, path);
      }
    }
    if (key == "board-settings") {
      try {
        instruments::setting_values_from_json(value, where_, path);
      } catch (const std::invalid_argument& e) {
        throw CampaignError(e.what());
      }
    }
    if (key == "device" && value.is_string()) {
      const std::string address = value.get<std::string>();
      if (address.empty() || address[0] == '@') return;
      try {
        drivers::check_address(address);
      } catch (const drivers::AddressError& e) {
        fail(where_, path, e.what());
      }
    }
  }

  std::string top_id(const json& step, std::size_t i, const std::string& path) {
    if (!step.contains("id")) {
      const std::string type = step.value("type", std::string("step"));
      return (kStepTypes.count(type) ? type : std::string("step")) + std::to_string(i + 1);
    }
    const json& id = step["id"];
    if (!id.is_string() || !valid_id(id.get<std::string>())) {
      fail(where_, path + "/id", "expected 1..64 characters of [A-Za-z0-9_-], got " + describe(id));
    }
    return id.get<std::string>();
  }

  std::string step_type(const json& step, const std::string& path) {
    if (!step.contains("type")) {
      fail(where_, path + "/type", "missing (one of " + step_type_list(", ") + ")");
    }
    const json& t = step["type"];
    if (!t.is_string() || !kStepTypes.count(t.get<std::string>())) {
      fail(where_, path + "/type",
           "unknown step type " + t.dump() + " (expected " + step_type_list(" or ") + ")");
    }
    return t.get<std::string>();
  }

  // The leaf type under nested sweeps / repeats.
  std::string leaf_type(const json& step, const std::string& path) {
    const std::string type = step_type(step, path);
    if (type != "sweep" && type != "repeat") return type;
    if (!step.contains("step") || !step["step"].is_object()) {
      fail(where_, path + "/step", "missing: a " + type + " needs a nested step object");
    }
    return leaf_type(step["step"], path + "/step");
  }

  void check_keys(const json& step, const std::string& path, const std::set<std::string>& allowed,
                  const std::string& type) {
    for (const auto& [key, v] : step.items()) {
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
        fail(where_, path + "/" + key, "unknown key of a " + type + " step (known: " + list + ")");
      }
    }
  }

  // The canonical name of option `written` (at `path`) of a `type` step, after the checks every
  // option gets: a known option, not already in `seen` under another spelling, a valid value.
  std::string checked_option(const std::string& type, const json& known, const std::string& written,
                             const json& value, const std::string& path, const json& seen) {
    const std::string key = canonical_key(written, known, path);
    if (!known.contains(key)) {
      fail(where_, path + "/" + key,
           "unknown " + type + " option (known: " + known_keys(known) + ")");
    }
    if (seen.contains(key)) {
      fail(where_, path + "/" + written, "\"" + key + "\" is given twice (two spellings)");
    }
    check_option(type, key, known[key], value, path + "/" + written);
    return key;
  }

  void expand(const json& step, const std::string& path, const std::string& id,
              const std::string& top, json overrides, json parameters, bool top_level) {
    const std::string type = step_type(step, path);
    if (!top_level && step.contains("id")) {
      fail(where_, path + "/id",
           "a nested step takes its id from the enclosing sweep/repeat: remove it");
    }
    if (!top_level && (type == "evaluate" || type == "report" || type == "calibrate")) {
      fail(where_, path + "/type", "a " + type + " step cannot be nested in a sweep or repeat");
    }
    if (type == "sweep") return expand_sweep(step, path, id, top, overrides, parameters);
    if (type == "repeat") return expand_repeat(step, path, id, top, overrides, parameters);
    PlannedStep leaf;
    leaf.id = id;
    leaf.type = type;
    leaf.top = top;
    leaf.json_path = path;
    leaf.parameters = parameters;
    if (type == "train" || type == "characterize" || is_measurement_step(type)) {
      set_leaf_options(leaf, step, overrides);
    } else if (type == "evaluate") {
      set_evaluated_runs(leaf, step);
    } else if (type == "calibrate") {
      set_calibration_sources(leaf, step);
    } else {  // report
      check_keys(step, path, {"id", "type", "title", "comment"}, type);
      leaf.options = {{"title", step.value("title", c_.name)}};
    }
    c_.steps.push_back(std::move(leaf));
  }

  void expand_sweep(const json& step, const std::string& path, const std::string& id,
                    const std::string& top, const json& overrides, const json& parameters) {
    const std::string type = "sweep";
    check_keys(step, path, {"id", "type", "parameter", "values", "step", "comment"}, type);
    if (!step.contains("parameter") || !step["parameter"].is_string()) {
      fail(where_, path + "/parameter",
           "missing or not a string: the option to sweep, e.g. \"mstar\"");
    }
    const std::string inner = leaf_type(step, path);
    const json known = defaults_for(inner);
    const std::string parameter =
        canonical_key(step["parameter"].get<std::string>(), known, path + "/parameter");
    if (!known.contains(parameter)) {
      fail(where_, path + "/parameter",
           "cannot sweep \"" + parameter + "\": not an option of the nested " + inner +
               " step (known: " + known_keys(known) + ")");
    }
    if (overrides.contains(parameter)) {
      fail(where_, path + "/parameter",
           "\"" + parameter +
               "\" is already set by an enclosing "
               "sweep or repeat");
    }
    if (!step.contains("values") || !step["values"].is_array() || step["values"].empty()) {
      fail(where_, path + "/values",
           "expected a non-empty array of values for \"" + parameter + "\"");
    }
    std::set<std::string> labels;
    for (std::size_t k = 0; k < step["values"].size(); ++k) {
      const json& v = step["values"][k];
      const std::string vpath = path + "/values/" + std::to_string(k);
      check_option(inner, parameter, known[parameter], v, vpath);
      const std::string label = value_label(v);
      if (!labels.insert(label).second) fail(where_, vpath, "duplicate value " + v.dump());
      json o = overrides, p = parameters;
      o[parameter] = v;
      p[parameter] = v;
      expand(step["step"], path + "/step", id + "/" + parameter + "=" + label, top, o, p, false);
    }
  }

  // The seeds of a repeat step: "seeds", or "count" from "first_seed" (default 1).
  std::vector<std::uint64_t> repeat_seeds(const json& step, const std::string& path) {
    std::vector<std::uint64_t> seeds;
    if (step.contains("seeds")) {
      const json& s = step["seeds"];
      if (!s.is_array() || s.empty())
        fail(where_, path + "/seeds",
             "expected a non-empty "
             "array of seeds");
      for (std::size_t k = 0; k < s.size(); ++k) {
        if (!s[k].is_number_unsigned()) {
          fail(where_, path + "/seeds/" + std::to_string(k),
               "expected a non-negative integer, got " + describe(s[k]));
        }
        seeds.push_back(s[k].get<std::uint64_t>());
      }
      if (step.contains("count") && step["count"] != json(seeds.size())) {
        fail(where_, path + "/count",
             "differs from the number of /seeds (" + std::to_string(seeds.size()) + ")");
      }
    } else {
      if (!step.contains("count")) {
        fail(where_, path + "/count", "missing: how many times to repeat (or give \"seeds\")");
      }
      const json& n = step["count"];
      if (!n.is_number_unsigned() || n.get<std::uint64_t>() < 1 || n.get<std::uint64_t>() > 10000) {
        fail(where_, path + "/count", "expected an integer in 1..10000, got " + describe(n));
      }
      std::uint64_t first = 1;
      if (step.contains("first_seed")) {
        if (!step["first_seed"].is_number_unsigned()) {
          fail(where_, path + "/first_seed",
               "expected a non-negative integer, got " + describe(step["first_seed"]));
        }
        first = step["first_seed"].get<std::uint64_t>();
      }
      for (std::uint64_t k = 0; k < n.get<std::uint64_t>(); ++k) seeds.push_back(first + k);
    }
    return seeds;
  }

  void expand_repeat(const json& step, const std::string& path, const std::string& id,
                     const std::string& top, const json& overrides, const json& parameters) {
    check_keys(step, path, {"id", "type", "count", "first_seed", "seeds", "step", "comment"},
               "repeat");
    const std::vector<std::uint64_t> seeds = repeat_seeds(step, path);
    leaf_type(step, path);  // checks the nesting
    if (overrides.contains("seed")) {
      fail(where_, path, "the seed is already set by an enclosing sweep or repeat");
    }
    for (auto seed : seeds) {
      json o = overrides, p = parameters;
      o["seed"] = seed;
      p["seed"] = seed;
      expand(step["step"], path + "/step", id + "/seed=" + std::to_string(seed), top, o, p, false);
    }
  }

  // A train or characterize leaf's options: the defaults, the campaign's defaults, the step's
  // own keys (checked), then the enclosing sweeps' and repeats' values.
  void set_leaf_options(PlannedStep& leaf, const json& step, const json& overrides) {
    const std::string type = leaf.type;
    const std::string path = leaf.json_path;
    json known = defaults_for(type);
    json options = known;
    if (defaults_.contains(type)) options.update(defaults_[type]);
    json given = json::object();
    for (const auto& [written, value] : step.items()) {
      if (written == "id" || written == "type" || written == "comment") continue;
      const std::string key = checked_option(type, known, written, value, path, given);
      given[key] = true;
      if (overrides.contains(key)) {
        fail(where_, path + "/" + key,
             "also set by the enclosing sweep/repeat: remove it from the nested step");
      }
      options[key] = value;
    }
    options.update(overrides);
    leaf.options = options;
    resolve_references(leaf);
    if (type == "train") finish_train(leaf);
    if (type == "characterize") finish_characterize(leaf);
    if (is_measurement_step(type)) finish_measurement(leaf);
  }

  // A file path of a step (a cell map's "from") made absolute from the campaign file's folder, so
  // the plan reads the same file wherever the run folder is.
  void resolve_from_campaign_folder(json& path) const {
    const fs::path p = path.get<std::string>();
    if (p.empty() || p.is_absolute()) return;
    path = fs::absolute(fs::path(where_).parent_path() / p).lexically_normal().string();
  }

  // A measurement's options through its own parser (bench::OptionError names the key; types and
  // the board settings are checked as every step's, by check_option).
  void finish_measurement(PlannedStep& leaf) {
    json options = leaf.options;
    for (const char* key : {"device", "chip", "board-settings", "base-calibration"}) {
      options.erase(key);
    }
    try {
      if (leaf.type == "retention") {
        bench::retention_options_from_json(options);
      } else if (leaf.type == "forming") {
        bench::forming_options_from_json(options);
      } else if (leaf.type == "cell-map") {
        bench::cell_map_options_from_json(options);
        resolve_from_campaign_folder(leaf.options["from"]);
      } else if (leaf.type == "endurance") {
        bench::endurance_options_from_json(options);
      } else if (leaf.type == "window") {
        bench::window_options_from_json(options);
      } else {
        bench::read_disturb_options_from_json(options);
      }
    } catch (const bench::OptionError& e) {
      fail(where_, leaf.json_path + "/" + e.key(), e.problem());
    }
  }

  // An evaluate leaf's runs: the train leaves its references name.
  void set_evaluated_runs(PlannedStep& leaf, const json& step) {
    const std::string path = leaf.json_path;
    check_keys(step, path, {"id", "type", "runs", "comment"}, "evaluate");
    if (!step.contains("runs")) {
      fail(where_, path + "/runs", "missing: the train steps to evaluate, e.g. \"@fig2a\"");
    }
    json runs = step["runs"].is_array() ? step["runs"] : json::array({step["runs"]});
    json ids = json::array();
    for (std::size_t k = 0; k < runs.size(); ++k) {
      const std::string rpath =
          step["runs"].is_array() ? path + "/runs/" + std::to_string(k) : path + "/runs";
      if (!runs[k].is_string()) {
        fail(where_, rpath, "expected a reference \"@step\", got " + describe(runs[k]));
      }
      const auto leaves = referenced_leaves(runs[k].get<std::string>(), rpath);
      std::size_t trains = 0;
      for (auto li : leaves) {
        const auto& l = c_.steps[li];
        if (l.type != "train") continue;
        ++trains;
        ids.push_back(l.id);
        leaf.links.push_back({"runs", runs[k].get<std::string>(), l.id, "run", l.dir().string()});
      }
      if (trains == 0) {
        fail(where_, rpath, runs[k].dump() + " has no train steps to evaluate");
      }
    }
    leaf.options = {{"runs", ids}};
  }

  // A calibrate leaf (docs/campaigns.md): "from" names earlier measurement steps (each leaf of a
  // sweep or repeat of them), "base" a characterisation's (or another calibrate step's)
  // calibration or a file. Options: {"from": [folders], "base", "include-unidentifiable"}.
  void set_calibration_sources(PlannedStep& leaf, const json& step) {
    const std::string path = leaf.json_path;
    check_keys(step, path, {"id", "type", "from", "base", "include-unidentifiable", "comment"},
               "calibrate");
    if (!step.contains("from")) {
      fail(where_, path + "/from",
           "missing: the measurement steps to fit the calibration from, e.g. [\"@retention\"]");
    }
    const json& given = step["from"];
    const json refs = given.is_array() ? given : json::array({given});
    json folders = json::array();
    for (std::size_t k = 0; k < refs.size(); ++k) {
      const std::string rpath =
          given.is_array() ? path + "/from/" + std::to_string(k) : path + "/from";
      if (!refs[k].is_string()) {
        fail(where_, rpath, "expected a reference \"@step\", got " + describe(refs[k]));
      }
      const std::string ref = refs[k].get<std::string>();
      for (auto li : referenced_leaves(ref, rpath)) {
        const auto& l = c_.steps[li];
        if (!is_measurement_step(l.type)) {
          fail(where_, rpath,
               ref + " is a " + l.type +
                   " step, not a measurement (retention, "
                   "read-disturb, ...)");
        }
        folders.push_back(l.dir().string());
        leaf.links.push_back({"from", ref, l.id, "dir", l.dir().string()});
      }
    }
    if (folders.empty()) fail(where_, path + "/from", "names no measurement step");
    const json base = step.value("base", json(""));
    if (!base.is_string()) {
      fail(where_, path + "/base",
           "expected \"@characterize-step\" or a calibration file, got " + describe(base));
    }
    const json include = step.value("include-unidentifiable", json(false));
    if (!include.is_boolean()) {
      fail(where_, path + "/include-unidentifiable",
           "expected true or false, got " + describe(include));
    }
    leaf.options = {{"from", folders}, {"base", base}, {"include-unidentifiable", include}};
    resolve_references(leaf);  // "base": "@char" -> its calibration.json
  }

  // Leaves of the earlier top-level step named by "@id" (outputs after a dot are ignored here).
  std::vector<std::size_t> referenced_leaves(const std::string& ref, const std::string& path) {
    if (ref.size() < 2 || ref[0] != '@') {
      fail(where_, path, "expected a reference \"@step\" or \"@step.output\", got \"" + ref + "\"");
    }
    const std::string id =
        ref.substr(1, ref.find('.') == std::string::npos ? std::string::npos : ref.find('.') - 1);
    const auto it = done_.find(id);
    if (it == done_.end()) {
      if (all_ids_.count(id)) {
        fail(where_, path,
             "\"" + ref + "\" refers to step \"" + id + "\" (/steps/" +
                 std::to_string(all_ids_.at(id)) +
                 "), which runs later: a step can only use the results of earlier steps");
      }
      std::string list;
      for (const auto& [k, v] : done_) list += (list.empty() ? "" : ", ") + k;
      fail(where_, path,
           "dangling reference \"" + ref + "\": no step with id \"" + id + "\" before it" +
               (list.empty() ? std::string(" (no earlier steps)")
                             : " (earlier steps: " + list + ")"));
    }
    return it->second.leaves;
  }

  // String options of the form "@step.output" become paths of that step's output.
  void resolve_references(PlannedStep& leaf) {
    for (auto& [key, value] : leaf.options.items()) {
      if (!value.is_string()) continue;
      const std::string ref = value.get<std::string>();
      if (ref.empty() || ref[0] != '@') continue;
      const std::string path = leaf.json_path + "/" + key;
      const auto leaves = referenced_leaves(ref, path);
      if (leaves.size() != 1) {
        fail(where_, path,
             "\"" + ref + "\" names " + std::to_string(leaves.size()) +
                 " runs (a sweep or repeat); an option takes the result of one step");
      }
      const PlannedStep& from = c_.steps[leaves[0]];
      const auto dot = ref.find('.');
      std::map<std::string, std::string> outputs;
      if (from.type == "characterize") {
        outputs = {{"calibration", "calibration.json"},
                   {"cdf", "cdf.csv"},
                   {"samples", "samples.csv"},
                   {"dir", ""}};
      } else if (from.type == "train") {
        outputs = {{"run", ""},
                   {"summary", "summary.json"},
                   {"metrics", "metrics.csv"},
                   {"checkpoint", "checkpoint.bin"}};
      } else if (from.type == "evaluate") {
        outputs = {{"evaluation", "evaluation.json"}};
      } else if (from.type == "calibrate") {
        outputs = {{"calibration", "calibration.json"}};
      } else {
        outputs = {{"dir", ""}};
      }
      // "@id" alone names the step's main result.
      const std::string main_output = from.type == "characterize" || from.type == "calibrate"
                                          ? "calibration"
                                      : from.type == "train" ? "run"
                                                             : outputs.begin()->first;
      const std::string name = dot == std::string::npos ? main_output : ref.substr(dot + 1);
      if (!outputs.count(name)) {
        std::string list;
        for (const auto& [k, v] : outputs) list += (list.empty() ? "" : ", ") + k;
        fail(where_, path,
             "step \"" + from.id + "\" (" + from.type + ") has no output \"" + name +
                 "\" (outputs: " + list + ")");
      }
      const fs::path file = from.dir() / outputs.at(name);
      leaf.links.push_back({key, ref, from.id, name, file.lexically_normal().string()});
      value = file.lexically_normal().string();
    }
  }

  void finish_train(PlannedStep& leaf) {
    json& o = leaf.options;
    for (const auto& key : kHardwareTrainOptions) {
      const bool trainer_knows = train_defaults().contains(key);
      if (!trainer_knows && o[key] != "") {
        c_.warnings.push_back(leaf.id + ": option \"" + key +
                              "\" is not supported by this build's trainer (issue 4); "
                              "`campaign run` will refuse this step until it is");
      }
    }
    // The trainer's own validation, with the message placed at the step.
    try {
      leaf_train_config(leaf).validate();
    } catch (const std::exception& e) {
      fail(where_, leaf.json_path, e.what());
    }
    const double tasks = static_cast<double>(o["tasks"].size());
    const double epochs = o["epochs"].get<double>();
    const double limit = o["train-limit"].get<double>();
    const double per_task = limit > 0 ? std::min(limit, kTrainImagesPerTask) : kTrainImagesPerTask;
    const double train_samples = tasks * epochs * per_task;
    const double eval_samples =
        tasks * epochs * tasks * (kTestImagesPerTask + per_task * o["validation"].get<double>());
    double weights = 0, inputs = 784;
    for (const auto& h : o["hidden"]) {
      weights += inputs * h.get<double>();
      inputs = h.get<double>();
    }
    weights += inputs * 10;
    const double threads = std::max(1.0, o["threads"].get<double>());
    leaf.host_seconds =
        (3 * train_samples + eval_samples) * weights / (kHostMultiplyAddsPerSecond * threads);
    try {
      estimate_board_store(leaf, hil::stated_level_change_model());
    } catch (const std::exception& e) {
      fail(where_, leaf.json_path, e.what());
    }
  }

  void finish_characterize(PlannedStep& leaf) {
    const json& o = leaf.options;
    hil::CharacterizeOptions options;
    options.cells = o["cells"].get<std::size_t>();
    options.cycles = o["cycles"].get<std::size_t>();
    options.read_repeats = o["read-repeats"].get<std::size_t>();
    options.read_cells = o["read-cells"].get<std::size_t>();
    options.seed = o["seed"].get<std::uint64_t>();
    options.formed_threshold_us = o["formed-threshold-us"].get<double>();
    try {
      hil::check_options(options);
    } catch (const std::exception& e) {
      fail(where_, leaf.json_path, e.what());
    }
    // Per state and cycle: two pulses (RESET then SET; SET then RESET for the LCS) and a read.
    const double programmings =
        static_cast<double>(options.cells * options.cycles) * kStatesPerCycle;
    const double pulses = 2 * programmings;
    const double reads =
        programmings +
        static_cast<double>(options.read_cells * options.read_repeats) * kStatesPerCycle;
    const devices::TimingModel t;
    const double pulse_ns = static_cast<double>(t.cell_select_ns + 2 * t.pulse_settle_ns) + 100.0;
    const double read_ns = static_cast<double>(t.cell_select_ns + t.adc_conversion_ns);
    const double link_ns = static_cast<double>(t.link_ns(6));  // ~6 bytes per cell, both ways
    const double batches = (pulses + reads) / 64.0;
    leaf.device_operations = pulses + reads;
    leaf.device_seconds = (pulses * pulse_ns + reads * read_ns + (pulses + reads) * link_ns +
                           batches * static_cast<double>(t.command_overhead_ns)) *
                          1e-9;
  }
};

}  // namespace

bool is_measurement_step(const std::string& type) {
  return type == "retention" || type == "read-disturb" || type == "forming" || type == "cell-map" ||
         type == "window" || type == "endurance";
}

bool Campaign::uses_board() const {
  for (const auto& s : steps) {
    if (s.type == "characterize" || is_measurement_step(s.type)) return true;
    if (s.type == "train" && (s.board_store || !s.device_operations_known)) return true;
  }
  return false;
}

std::vector<std::uint64_t> Campaign::seeds() const {
  std::vector<std::uint64_t> seeds;
  for (const auto& s : steps) {
    if (s.options.contains("seed")) seeds.push_back(s.options["seed"].get<std::uint64_t>());
  }
  return seeds;
}

Campaign parse_campaign(const nlohmann::json& doc, const std::string& where) {
  Campaign c;
  c.source = where;
  c.document = doc;
  Expander(c, where).run(doc);
  return c;
}

Campaign parse_campaign_text(std::string_view text, const std::string& where) {
  return parse_campaign(common::parse_json_text(text, where), where);
}

void estimate_board_time(Campaign& campaign, const hil::LevelChangeModel& model,
                         const std::string& top) {
  bool any = false;
  for (auto& s : campaign.steps) {
    if (s.type != "train" || !s.board_store || (!top.empty() && s.top != top)) continue;
    estimate_board_store(s, model);
    any = true;
  }
  if (!any && !top.empty()) {
    throw CampaignError(campaign.source +
                        ": no train step with a layer on the board comes from "
                        "step \"" +
                        top + "\" (give a top-level step's id)");
  }
}

Campaign load_campaign(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in || fs::is_directory(file)) {
    throw std::runtime_error("cannot read campaign file " + file.string() + " (check the path)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_campaign_text(text.str(), file.string());
}

EstimateTotals estimate_totals(const Campaign& campaign, const std::string& top) {
  EstimateTotals t;
  for (const auto& s : campaign.steps) {
    if (!top.empty() && s.top != top) continue;
    ++t.steps;
    t.board_steps += s.type == "train" && s.board_store;
    t.not_estimated += s.type == "train" && !s.device_operations_known;
    t.device_operations += s.device_operations;
    t.device_seconds += s.device_seconds;
    t.host_seconds += s.host_seconds;
    t.link_seconds_uart += s.link_seconds_uart;
    t.link_seconds_tcp += s.link_seconds_tcp;
  }
  return t;
}

std::string format_plan(const Campaign& c) {
  std::ostringstream out;
  out << "campaign \"" << c.name << "\" (" << c.source << "): " << c.steps.size() << " steps\n";
  if (!c.description.empty()) out << "  " << c.description << "\n";
  const auto duration = [](double seconds) { return util::format_duration(seconds); };
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    const auto& s = c.steps[i];
    const json defaults = defaults_for(s.type);
    std::string options;
    for (const auto& [k, v] : s.options.items()) {
      if (defaults.contains(k) && defaults[k] == v) continue;
      bool linked = false;
      for (const auto& l : s.links) linked = linked || l.option == k;
      if (linked) continue;
      options += " " + k + "=" + common::option_value_text(v);
    }
    char head[160];
    std::snprintf(head, sizeof head, "%3zu. %-28s %-12s", i + 1, s.id.c_str(), s.type.c_str());
    out << head << options << "\n";
    // One line per reference ("runs <- @fig2a  (9 runs: steps/fig2a/...)").
    for (std::size_t k = 0; k < s.links.size();) {
      std::size_t n = 1;
      while (k + n < s.links.size() && s.links[k + n].reference == s.links[k].reference &&
             s.links[k + n].option == s.links[k].option) {
        ++n;
      }
      out << "       " << s.links[k].option << " <- " << s.links[k].reference << "  (";
      if (n > 1) out << n << " runs: ";
      out << s.links[k].path << (n > 1 ? ", ..." : "") << ")\n";
      k += n;
    }
    if (s.type == "train" || s.type == "characterize") {
      out << "       estimate: ";
      char b[160];
      if (!s.device_operations_known) {
        out << "device operations not estimated (board store: depends on level changes)";
      } else if (s.board_store) {
        std::snprintf(b, sizeof b, "%.3g device operations, board time %s", s.device_operations,
                      duration(s.device_seconds).c_str());
        out << b;
      } else if (s.device_operations > 0) {
        std::snprintf(b, sizeof b, "%.3g device operations, device time %s", s.device_operations,
                      duration(s.device_seconds).c_str());
        out << b;
      } else {
        out << "no device operations";
      }
      out << ", host time ~" << duration(s.host_seconds) << "\n";
      if (s.board_store) {
        out << "                 link time: UART " << duration(s.link_seconds_uart) << ", TCP "
            << duration(s.link_seconds_tcp) << " (board store, " << s.level_change_source << ")\n";
      }
    }
  }
  const EstimateTotals t = estimate_totals(c);
  char total[320];
  std::snprintf(total, sizeof total,
                "total: %zu steps, %.3g device operations, device time ~%s, host time ~%s\n",
                t.steps, t.device_operations, duration(t.device_seconds).c_str(),
                duration(t.host_seconds).c_str());
  out << total;
  if (t.board_steps > 0) {
    std::snprintf(total, sizeof total,
                  "board-store train steps: %zu, link time ~%s over a 921,600-baud UART, ~%s over "
                  "TCP (device time above includes their board time)\n",
                  t.board_steps, duration(t.link_seconds_uart).c_str(),
                  duration(t.link_seconds_tcp).c_str());
    out << total;
  }
  if (t.not_estimated > 0) {
    out << t.not_estimated << " board-store train steps not estimated (an old plan)\n";
  }
  for (const auto& w : c.warnings) out << "warning: " << w << "\n";
  return out.str();
}

nlohmann::json plan_json(const Campaign& campaign) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : campaign.steps) {
    nlohmann::json links = nlohmann::json::array();
    for (const auto& l : s.links) {
      links.push_back({{"option", l.option},
                       {"reference", l.reference},
                       {"from", l.from},
                       {"output", l.output},
                       {"path", l.path}});
    }
    steps.push_back(
        {{"id", s.id},
         {"type", s.type},
         {"top", s.top},
         {"json_path", s.json_path},
         {"dir", s.dir().string()},
         {"options", s.options},
         {"parameters", s.parameters},
         {"links", links},
         {"estimate",
          {{"host_seconds", s.host_seconds},
           {"device_seconds", s.device_seconds},
           {"device_operations", s.device_operations_known ? nlohmann::json(s.device_operations)
                                                           : nlohmann::json(nullptr)},
           {"board_store", s.board_store},
           {"link_seconds", {{"uart", s.link_seconds_uart}, {"tcp", s.link_seconds_tcp}}}}}});
  }
  return {{"campaign", campaign.name},
          {"source", campaign.source},
          {"steps", steps},
          {"warnings", campaign.warnings}};
}

}  // namespace metaplast::campaign
