// `metaplast view DIR`: the live view of a run or campaign folder, finished or still being
// written by another process (docs/live.md, "Following a folder").
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "app/cli/commands.hpp"
#include "app/cli/interrupt.hpp"
#include "app/cli/live_options.hpp"
#include "app/learning/dataset.hpp"
#include "app/report/folder_view.hpp"

namespace metaplast::cli {

namespace {

struct ViewArguments {
  std::string dir, listen = "127.0.0.1";
  unsigned short port = 0;
};

// Follows the folder until Ctrl-C: new files and lines are published as they appear.
void run_view(const ViewArguments& args) {
  live::LiveOptions options;
  options.port = args.port;
  options.listen = args.listen;
  options.files = args.dir;  // the page's links to a campaign's step folders
  InterruptHandler interrupts(InterruptHandler::Stops::quit);
  // The folder is checked before the server starts: a wrong folder opens no port.
  live::LiveFeed checked;
  report::FolderView probe(args.dir, checked);
  live::LiveSession session(options, live::asset_folders(learning::default_data_dir()),
                            {{"command", "view"}, {"out_dir", args.dir}, {"stoppable", false}},
                            [](const std::string& from) {
                              spdlog::warn(
                                  "live view: stop requested from {}: a view of a folder cannot "
                                  "stop the process that writes it (Ctrl-C or the page of its "
                                  "own --live)",
                                  from);
                            });
  report::FolderView view(args.dir, session.feed());
  std::printf("following %s (Ctrl-C to quit)\n", args.dir.c_str());
  std::fflush(stdout);
  bool ended = false;
  while (!InterruptHandler::stop_requested().load()) {
    if (view.poll() && !ended) {
      ended = true;
      std::printf("the %s in %s has ended; still serving its view (Ctrl-C to quit)\n",
                  view.is_campaign() ? "campaign" : "run", args.dir.c_str());
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

void add_view_command(CLI::App& root) {
  auto args = std::make_shared<ViewArguments>();
  auto* cmd = root.add_subcommand(
      "view",
      "Serve the live view of a train run or campaign folder in the browser, finished or still "
      "being written by another process (it follows the files); Ctrl-C quits");
  cmd->add_option("DIR", args->dir,
                  "A run folder (metaplast train --out) or a campaign folder (campaign run --out)")
      ->required();
  cmd->add_option("--port", args->port, "Port (default: any free port; the address is printed)");
  cmd->add_option("--listen", args->listen,
                  "Listen on ADDR instead of 127.0.0.1 (every request then needs the token printed "
                  "at start)");
  cmd->callback([args] { run_view(*args); });
}

}  // namespace metaplast::cli
