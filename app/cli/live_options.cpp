#include "app/cli/live_options.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <fstream>
#include <stdexcept>

#include "app/cli/interrupt.hpp"
#include "app/learning/dataset.hpp"
#include "common/clock.hpp"

namespace metaplast::cli {

void add_live_options(CLI::App* command, LiveArguments& args) {
  const std::string group = "Live view (docs/live.md)";
  command
      ->add_option("--live", args.port,
                   "Serve a live view of the run in the browser: --live (any free port) or "
                   "--live=PORT; the address is printed at start")
      ->expected(0, 1)
      ->default_str("0")
      ->group(group);
  command
      ->add_option("--listen", args.listen,
                   "With --live: listen on ADDR instead of 127.0.0.1 (every request then needs "
                   "the token printed at start)")
      ->group(group);
}

live::LiveOptions live_options(const LiveArguments& args) {
  live::LiveOptions options;
  if (args.port.empty()) {
    if (!args.listen.empty()) {
      throw std::invalid_argument("--listen " + args.listen +
                                  " without --live: add --live (or --live=PORT)");
    }
    return options;
  }
  unsigned port = 0;
  const char* end = args.port.data() + args.port.size();
  const auto [next, error] = std::from_chars(args.port.data(), end, port);
  if (error != std::errc() || next != end || port > 65535) {
    throw std::invalid_argument("--live=" + args.port +
                                ": not a port number (0..65535; --live alone picks a free port)");
  }
  options.port = static_cast<unsigned short>(port);
  if (!args.listen.empty()) options.listen = args.listen;
  return options;
}

std::unique_ptr<live::LiveSession> start_live_view(
    const live::LiveOptions& options, nlohmann::json run,
    const std::optional<std::filesystem::path>& stop_log) {
  if (!options.enabled()) return nullptr;
  std::function<void(const std::string&)> on_stop;
  if (stop_log) {
    on_stop = [log = *stop_log](const std::string& from) {
      spdlog::warn("live view: stop requested from {}: stopping as a first Ctrl-C does", from);
      std::error_code ignored;
      std::filesystem::create_directories(log.parent_path(), ignored);
      std::ofstream(log, std::ios::app)
          << nlohmann::json{{"time", common::utc_now_iso8601_ms()},
                            {"from", from},
                            {"action", "stop after this epoch or step (as a first Ctrl-C)"}}
                 .dump()
          << "\n";
      InterruptHandler::request_stop();
    };
  } else {
    run["stoppable"] = false;
    on_stop = [command = run.value("command", "this command")](const std::string& from) {
      spdlog::warn(
          "live view: stop requested from {}: {} cannot be stopped from the page "
          "(Ctrl-C in its terminal)",
          from, command);
    };
  }
  return std::make_unique<live::LiveSession>(options,
                                             live::asset_folders(learning::default_data_dir()),
                                             std::move(run), std::move(on_stop));
}

void end_live_view(live::LiveSession* live, live::RunState state, int exit_status,
                   const std::string& message) {
  if (live != nullptr) live->end(state, exit_status, message);
}

}  // namespace metaplast::cli
