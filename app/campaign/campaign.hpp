// Campaign files: a named list of steps (characterize, train, sweep, repeat, evaluate, report),
// validated and expanded into a plan of leaf steps before anything touches hardware. The file
// format, the references between steps ("@char1.calibration") and the estimates are described
// in docs/campaigns.md.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/hil/board_time_estimate.hpp"

namespace metaplast::campaign {

// A malformed campaign: the message is "<file>: <JSON path>: <what was expected>".
class CampaignError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A value taken from an earlier step's result: `option` of this step gets `output` of step
// `from` (a file, `path` relative to the run directory).
struct Link {
  std::string option;     // e.g. "calibration" (evaluate: "runs")
  std::string reference;  // as written, e.g. "@char1.calibration"
  std::string from;       // leaf id of the producing step
  std::string output;     // e.g. "calibration"
  std::string path;       // e.g. "steps/char1/calibration.json"
};

// One step the campaign runs (sweeps and repeats are expanded into these).
struct PlannedStep {
  std::string id;         // unique, e.g. "fig2a/mstar=0.5" (also its directory under steps/)
  std::string type;       // "characterize", "train", "evaluate" or "report"
  std::string top;        // id of the top-level step it comes from
  std::string json_path;  // where the leaf is declared, e.g. "/steps/1/step"
  // train: every trainer option (defaults filled in) plus hardware keys; characterize: its
  // options; evaluate: {"runs": [leaf ids]}; report: {"title"}. References are resolved into
  // paths relative to the run directory (see `links`).
  nlohmann::json options;
  nlohmann::json parameters = nlohmann::json::object();  // swept / repeated values, e.g. mstar
  std::vector<Link> links;
  // Estimates (docs/campaigns.md "Estimates"). A train step with layers on the board
  // (`board_store`) has its board's time in device_seconds and its link's in link_seconds_uart
  // and link_seconds_tcp (docs/campaigns.md "Board time"); device_operations_known is false only
  // in plans written before those were estimated.
  double device_operations = 0;  // pulses + reads
  bool device_operations_known = true;
  double device_seconds = 0;
  double host_seconds = 0;
  bool board_store = false;
  double link_seconds_uart = 0;  // 921,600-baud UART, 8N1
  double link_seconds_tcp = 0;   // 100 Mbit/s Ethernet (devices::LinkModel::tcp)
  std::string level_change_source;

  std::filesystem::path dir() const { return std::filesystem::path("steps") / id; }
};

struct Campaign {
  std::string name;
  std::string description;
  std::string source;              // the file (or "<where>" given to parse_campaign)
  nlohmann::json document;         // the campaign as read
  std::vector<PlannedStep> steps;  // in execution order
  std::vector<std::string> warnings;

  bool uses_board() const;  // a characterize or measurement step, or a train step with a device
  std::vector<std::uint64_t> seeds() const;
};

// The device measurements of app/bench/ as step types ("forming", "cell-map", "window",
// "retention", "read-disturb", "endurance").
bool is_measurement_step(const std::string& type);

// Train step keys the campaign passes to the trainer only when this build's trainer knows them
// (issue 4: weights on a board). Until then `check` warns and `run` refuses them.
inline const std::vector<std::string> kHardwareTrainOptions = {"device", "calibration", "placement",
                                                               "chip"};

// Parses and expands `doc`. `where` names the source in messages. Throws CampaignError.
Campaign parse_campaign(const nlohmann::json& doc, const std::string& where);

// Parses a campaign file's text (common/json_file.hpp: depth limit, duplicate keys an error).
// Throws common::JsonFileError (a std::runtime_error) if it is not JSON, CampaignError for a bad
// value.
Campaign parse_campaign_text(std::string_view text, const std::string& where);

// Reads `file` (std::runtime_error if unreadable or not JSON, naming the file and the parse
// error's position) and parses it.
Campaign load_campaign(const std::filesystem::path& file);

// Estimates the board-store train steps again with `model` (`campaign check --pilot`: a pilot
// run's statistics instead of the stated model, hil::stated_level_change_model()): every one, or
// those expanded from the top-level step `top` (a repeat's or sweep's id, or a train step's).
// Throws CampaignError when `top` names no board-store train step.
void estimate_board_time(Campaign& campaign, const hil::LevelChangeModel& model,
                         const std::string& top = "");

// The estimates of a campaign's steps added up: every step's, or those expanded from the
// top-level step `top`.
struct EstimateTotals {
  std::size_t steps = 0;
  std::size_t board_steps = 0;    // board-store train steps
  std::size_t not_estimated = 0;  // board-store train steps of a plan written before estimates
  double device_operations = 0, device_seconds = 0, host_seconds = 0;
  double link_seconds_uart = 0, link_seconds_tcp = 0;
};
EstimateTotals estimate_totals(const Campaign& campaign, const std::string& top = "");

// The dry-run plan: steps with their options that differ from the defaults, links and
// estimates, and totals.
std::string format_plan(const Campaign& campaign);

// The plan as plan.json holds it (docs/run-records.md): {"campaign", "source", "steps": [{"id",
// "type", "top", "json_path", "dir", "options", "parameters", "links", "estimate"}], "warnings"}.
nlohmann::json plan_json(const Campaign& campaign);

}  // namespace metaplast::campaign
