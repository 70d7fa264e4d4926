// One command's live view (docs/live.md): its feed, the server, the address printed once, the
// stop action handed to the command, and the status line the page ends with. The command's
// threads publish to feed(); nothing here waits on a browser, except the destructor, which gives
// connected pages a moment to take the last status.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/live/live_feed.hpp"
#include "app/live/live_server.hpp"

namespace metaplast::live {

// --live[=PORT] and --listen ADDR of a command.
struct LiveOptions {
  std::optional<unsigned short> port;  // set: a live view on it (0: any free port)
  std::string listen = "127.0.0.1";
  // The run's folder the page links into (a campaign's step folders): GET /files/...; empty: none.
  std::filesystem::path files;
  bool enabled() const { return port.has_value(); }
};

// The folders the page's files come from: the source tree's web/ (the page) and
// `data_dir`/web (uPlot, fetched and checked by scripts/fetch_data.sh).
std::vector<std::filesystem::path> asset_folders(const std::filesystem::path& data_dir);

// How a command ended, as the page shows it.
enum class RunState { running, finished, stopped, interrupted, failed };
const char* to_string(RunState state);

class LiveSession {
 public:
  // Starts the server and prints "live view: URL" on stdout once (with the token when one is
  // needed), publishes `run` ({"command", "out_dir", ...}) and the status "running". `on_stop` is
  // called on the server's thread for an accepted stop request, with the requester's address.
  // Throws what LiveServer throws (a port in use, a missing page file, a bad address).
  LiveSession(const LiveOptions& options, std::vector<std::filesystem::path> assets,
              nlohmann::json run, std::function<void(const std::string& from)> on_stop);
  ~LiveSession();
  LiveSession(const LiveSession&) = delete;
  LiveSession& operator=(const LiveSession&) = delete;

  LiveFeed& feed() { return feed_; }
  const std::string& url() const { return url_; }
  // The page's status line: state, exit status and a sentence (what failed, how to continue).
  void status(RunState state, int exit_status, const std::string& message = {});
  // The last status, then a moment for every connected page to take it (at most `linger`).
  void end(RunState state, int exit_status, const std::string& message = {});

  static constexpr std::chrono::milliseconds linger{3000};

 private:
  LiveFeed feed_;
  std::unique_ptr<LiveServer> server_;
  std::string url_;
};

}  // namespace metaplast::live
