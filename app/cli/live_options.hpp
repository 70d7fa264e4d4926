// --live[=PORT] and --listen ADDR: a command's live view in the browser (docs/live.md).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "app/live/live_session.hpp"

namespace metaplast::cli {

// The stop requests of the live view, in the run's folder (docs/run-records.md).
inline constexpr const char* kStopRequestsFile = "stop_requests.jsonl";

// The options as given: `port` text ("" without --live, "0" for --live alone).
struct LiveArguments {
  std::string port, listen;
};

// --live[=PORT] and --listen ADDR in a "Live view" group of `command`.
void add_live_options(CLI::App* command, LiveArguments& args);

// The checked options: std::invalid_argument for a port that is not 0..65535, or --listen
// without --live.
live::LiveOptions live_options(const LiveArguments& args);

// The command's live view, or null without --live. `run` is the page's header ({"command",
// "out_dir", ...}). With a `stop_log`, the page's stop action asks the command to stop as a first
// Ctrl-C does (InterruptHandler::request_stop) and appends a line to it (JSON lines: "time",
// "from", "action"; docs/run-records.md) beside a warning in the log. Without one (a command that
// cannot stop midway), the page has no stop button and a stop request is only logged.
std::unique_ptr<live::LiveSession> start_live_view(
    const live::LiveOptions& options, nlohmann::json run,
    const std::optional<std::filesystem::path>& stop_log);

// The live view's status for a command that ends: what the page shows, for a moment for the
// pages connected to take it (live::LiveSession::end). Does nothing for a null `live`.
void end_live_view(live::LiveSession* live, live::RunState state, int exit_status,
                   const std::string& message = {});

}  // namespace metaplast::cli
