#include "app/learning/train_config.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <type_traits>

#include "app/learning/dataset.hpp"
#include "common/enum_names.hpp"

namespace metaplast::learning {

namespace {

[[noreturn]] void bad_option(const std::string& option, const std::string& message) {
  throw std::invalid_argument("--" + option + ": " + message);
}

struct NamedRange {
  std::string_view option;
  IntegerRange range;
};

// One table for the command line, config.json and campaigns. The upper bounds are far beyond
// any run on this hardware; they exist so that no value wraps when narrowed or multiplied.
constexpr NamedRange kIntegerRanges[] = {
    {"epochs", {1, 100'000}},
    {"hidden", {1, 1'000'000}},
    {"levels", {2, 65'535}},
    {"batch", {2, 1'000'000}},
    {"train-limit", {0, 100'000'000}},
    {"threads", {1, 1024}},
    {"projection-feedback-every", {1, 1'000'000'000}},
    {"reread-every", {0, 1'000'000'000}},
};

std::string range_text(const IntegerRange& r) {
  return std::to_string(r.min) + ".." + std::to_string(r.max);
}

template <typename T>
void check_range(const std::string& option, T value) {
  const IntegerRange& r = *integer_option_range(option);
  bool inside = false;
  if constexpr (std::is_unsigned_v<T>) {
    inside = static_cast<std::uint64_t>(value) <= static_cast<std::uint64_t>(r.max) &&
             static_cast<std::uint64_t>(value) >= static_cast<std::uint64_t>(r.min);
  } else {
    inside = static_cast<std::int64_t>(value) >= r.min && static_cast<std::int64_t>(value) <= r.max;
  }
  if (!inside) bad_option(option, "must be in " + range_text(r) + ", got " + std::to_string(value));
}

// A stored integer inside its option's range, checked before it is narrowed to T.
void check_stored_integer(const nlohmann::json& value, const char* key) {
  const IntegerRange* r = integer_option_range(key);
  if (!r || !value.is_number()) return;  // a wrong type is reported by get<T>()
  const bool integral =
      value.is_number_integer() || (std::isfinite(value.get<double>()) &&
                                    value.get<double>() == std::floor(value.get<double>()));
  const bool in_range =
      value.is_number_unsigned()
          ? value.get<std::uint64_t>() <= static_cast<std::uint64_t>(r->max) &&
                static_cast<std::int64_t>(value.get<std::uint64_t>()) >= r->min
      : value.is_number_integer()
          ? value.get<std::int64_t>() >= r->min && value.get<std::int64_t>() <= r->max
          : integral && value.get<double>() >= static_cast<double>(r->min) &&
                value.get<double>() <= static_cast<double>(r->max);
  if (!integral || !in_range) {
    throw std::invalid_argument(std::string("config: option '") + key + "' must be an integer in " +
                                range_text(*r) + ", got " + value.dump());
  }
}

template <typename T>
T get_key(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) {
    throw std::invalid_argument(std::string("config: missing option '") + key + "'");
  }
  const nlohmann::json& value = j.at(key);
  if (value.is_array()) {
    for (const auto& element : value) check_stored_integer(element, key);
  } else {
    check_stored_integer(value, key);
  }
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("config: option '") + key +
                                "' has the wrong type: " + e.what());
  }
}

}  // namespace

const IntegerRange* integer_option_range(std::string_view option) {
  for (const auto& named : kIntegerRanges) {
    if (named.option == option) return &named.range;
  }
  return nullptr;
}

namespace {

constexpr auto kBatchNormProtocolNames = common::enum_table<BatchNormProtocol>({
    {BatchNormProtocol::per_task, "per-task"},
    {BatchNormProtocol::shared, "shared"},
});

constexpr auto kBatchNormStatsNames = common::enum_table<BatchNormStats>({
    {BatchNormStats::running, "running"},
    {BatchNormStats::batch, "batch"},
});

constexpr auto kInitModeNames = common::enum_table<InitMode>({
    {InitMode::uniform, "uniform"},
    {InitMode::thresholds, "thresholds"},
});

}  // namespace

std::string_view to_string(BatchNormProtocol protocol) {
  return common::enum_name(kBatchNormProtocolNames, protocol);
}

std::string_view to_string(BatchNormStats stats) {
  return common::enum_name(kBatchNormStatsNames, stats);
}

BatchNormProtocol parse_batchnorm_protocol(std::string_view name) {
  return common::parse_enum(kBatchNormProtocolNames, name, "--bn: unknown BatchNorm protocol");
}

BatchNormStats parse_batchnorm_stats(std::string_view name) {
  return common::parse_enum(kBatchNormStatsNames, name, "--bn-stats: unknown test statistics");
}

std::string_view to_string(InitMode mode) { return common::enum_name(kInitModeNames, mode); }

InitMode parse_init_mode(std::string_view name) {
  return common::parse_enum(kInitModeNames, name, "--init-mode: unknown initialisation",
                            "uniform (U(-init, init)) or thresholds (T_j + init * h_j * U(-1, 1))");
}

void TrainConfig::validate() const {
  if (tasks.empty()) bad_option("tasks", "name at least one task (e.g. mnist,fashion)");
  std::set<std::string> seen;
  for (const std::string& task : tasks) {
    const auto known = known_tasks();
    if (std::find(known.begin(), known.end(), task) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      bad_option("tasks", "unknown task '" + task + "': known tasks are " + list);
    }
    if (!seen.insert(task).second) bad_option("tasks", "task '" + task + "' is listed twice");
  }
  check_range("epochs", epochs);
  if (!std::isfinite(mstar) || mstar < 0.0f) {
    bad_option("mstar", "must be finite and >= 0 (0 = plain Adam), got " + std::to_string(mstar));
  }
  if (!std::isfinite(depth_rate) || depth_rate < 0.0f) {
    bad_option("depth-rate", "must be finite and >= 0, got " + std::to_string(depth_rate));
  }
  if (!(projection >= 0.0f && projection < 1.0f)) {
    bad_option("projection",
               "must lie in [0, 1) (the share of a task's input energy protected; 0 = off, "
               "0.99 protects the directions that carry 99 %), got " +
                   std::to_string(projection));
  }
  check_range("projection-feedback-every", projection_feedback_every);
  if (!std::isfinite(projection_feedback) || projection_feedback < 0.0f) {
    bad_option("projection-feedback",
               "must be finite and >= 0, got " + std::to_string(projection_feedback));
  }
  if (hidden.empty()) bad_option("hidden", "give at least one hidden layer size (e.g. 1024,512)");
  if (hidden.size() > 64) bad_option("hidden", "at most 64 hidden layers");
  for (std::size_t h : hidden) check_range("hidden", h);  // each layer's size
  check_range("levels", levels);
  if (!std::isfinite(init) || init <= 0.0f) {
    bad_option("init", "must be a positive number, got " + std::to_string(init));
  }
  if (!std::isfinite(learning_rate) || learning_rate <= 0.0f) {
    bad_option("lr", "must be a positive number, got " + std::to_string(learning_rate));
  }
  if (!std::isfinite(lr_decay) || lr_decay <= 0.0f || lr_decay > 1.0f) {
    bad_option("lr-decay",
               "must be in (0, 1] (1 = constant learning rate), got " + std::to_string(lr_decay));
  }
  check_range("batch", batch);              // >= 2: BatchNorm
  check_range("train-limit", train_limit);  // 0: every image
  if (!std::isfinite(validation) || validation < 0.0 || validation >= 1.0) {
    bad_option("validation", "must be a fraction in [0, 1), got " + std::to_string(validation));
  }
  check_range("threads", threads);
  check_range("reread-every", reread_every);  // 0: keep the verify reads
  if (placement.empty()) bad_option("placement", "give ideal, virtual, board or a list per layer");
  if (mapping != "single" && mapping != "differential") {
    bad_option("mapping", "unknown mapping '" + mapping +
                              "': use single (one device per weight) or differential (G+ - G-)");
  }
}

bool TrainConfig::calibrated_levels() const {
  if (!calibration.empty() || mapping == "differential") return true;
  std::size_t start = 0;
  while (start <= placement.size()) {
    const std::size_t comma = std::min(placement.find(',', start), placement.size());
    if (placement.substr(start, comma - start) != "ideal") return true;
    start = comma + 1;
  }
  return false;
}

nlohmann::json TrainConfig::to_json() const {
  nlohmann::json j;
  j["tasks"] = tasks;
  j["epochs"] = epochs;
  j["mstar"] = mstar;
  j["rule"] = std::string(to_string(rule));
  j["depth-rate"] = depth_rate;
  j["projection"] = projection;
  j["projection-feedback"] = projection_feedback;
  j["projection-feedback-every"] = projection_feedback_every;
  j["hidden"] = hidden;
  j["levels"] = levels;
  j["init"] = init;
  j["lr-decay"] = lr_decay;
  j["init-mode"] = std::string(to_string(init_mode));
  j["bn"] = std::string(to_string(batchnorm));
  j["bn-stats"] = std::string(to_string(batchnorm_stats));
  j["lr"] = learning_rate;
  j["batch"] = batch;
  j["seed"] = seed;
  j["train-limit"] = train_limit;
  j["validation"] = validation;
  j["threads"] = threads;
  j["data"] = data_dir.string();
  j["placement"] = placement;
  j["device"] = device;
  j["calibration"] = calibration.string();
  j["reread-every"] = reread_every;
  j["chips-dir"] = chips_dir.string();
  j["chip"] = chip;
  j["mapping"] = mapping;
  if (!station.empty()) j["station"] = station.string();
  j["board-settings"] = board_settings;
  for (const auto& [key, value] : first_values().items()) {
    if (j.at(key) == value) j.erase(key);
  }
  return j;
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("config: options must be a JSON object");
  // An option this build does not know would be silently dropped: a newer run, or a typo.
  static const nlohmann::json known = with_first_values(TrainConfig{}.to_json());
  for (const auto& [key, value] : j.items()) {
    if (!known.contains(key) && key != "station") {
      throw std::invalid_argument("config: unknown option '" + key +
                                  "' (written by a newer metaplast, or edited by hand?)");
    }
  }
  TrainConfig c;
  c.tasks = get_key<std::vector<std::string>>(j, "tasks");
  c.epochs = get_key<int>(j, "epochs");
  c.mstar = get_key<float>(j, "mstar");
  c.rule = parse_rule(get_key<std::string>(j, "rule"));
  c.hidden = get_key<std::vector<std::size_t>>(j, "hidden");
  c.levels = get_key<std::size_t>(j, "levels");
  c.init = get_key<float>(j, "init");
  c.batchnorm = parse_batchnorm_protocol(get_key<std::string>(j, "bn"));
  c.batchnorm_stats = parse_batchnorm_stats(get_key<std::string>(j, "bn-stats"));
  c.learning_rate = get_key<float>(j, "lr");
  c.batch = get_key<std::size_t>(j, "batch");
  c.seed = get_key<std::uint64_t>(j, "seed");
  c.train_limit = get_key<std::size_t>(j, "train-limit");
  c.validation = get_key<double>(j, "validation");
  c.threads = get_key<int>(j, "threads");
  c.data_dir = get_key<std::string>(j, "data");
  // Hardware-in-the-loop options: absent in runs made before they existed (all ideal).
  if (j.contains("placement")) {
    c.placement = get_key<std::string>(j, "placement");
    c.device = get_key<std::string>(j, "device");
    c.calibration = get_key<std::string>(j, "calibration");
    c.reread_every = get_key<int>(j, "reread-every");
    c.chips_dir = get_key<std::string>(j, "chips-dir");
    c.chip = get_key<std::string>(j, "chip");
  }
  const nlohmann::json later = with_first_values(j);
  c.lr_decay = get_key<float>(later, "lr-decay");
  c.depth_rate = get_key<float>(later, "depth-rate");
  c.projection = get_key<float>(later, "projection");
  c.projection_feedback = get_key<float>(later, "projection-feedback");
  c.projection_feedback_every = get_key<int>(later, "projection-feedback-every");
  c.init_mode = parse_init_mode(get_key<std::string>(later, "init-mode"));
  c.mapping = get_key<std::string>(later, "mapping");
  c.board_settings = later.at("board-settings");
  if (!c.board_settings.is_object()) {
    throw std::invalid_argument(
        "config: option 'board-settings' must be an object of board "
        "settings, got " +
        c.board_settings.dump());
  }
  if (j.contains("station")) c.station = get_key<std::string>(j, "station");
  return c;
}

const nlohmann::json& TrainConfig::first_values() {
  static const nlohmann::json values = {{"mapping", "single"},
                                        {"init-mode", "uniform"},
                                        {"lr-decay", 1.0f},
                                        {"depth-rate", 0.25f},
                                        {"projection", 0.0f},
                                        {"projection-feedback", 0.1f},
                                        {"projection-feedback-every", 1},
                                        {"board-settings", nlohmann::json::object()}};
  return values;
}

nlohmann::json TrainConfig::with_first_values(const nlohmann::json& options) {
  nlohmann::json filled = first_values();
  filled.update(options);
  return filled;
}

void apply_on_chip_preset(TrainConfig& config,
                          const std::function<bool(std::string_view)>& given) {
  if (!given("hidden")) config.hidden = {20};
  if (!given("placement")) config.placement = "board";
  if (!given("rule")) config.rule = MetaplasticRule::global;
  if (!given("mstar")) config.mstar = 4.0f;
  if (!given("init-mode")) config.init_mode = InitMode::uniform;
  if (!given("init")) config.init = 0.05f;
  if (!given("lr-decay")) config.lr_decay = 1.0f;
  if (!given("epochs")) config.epochs = 20;
}

}  // namespace metaplast::learning
