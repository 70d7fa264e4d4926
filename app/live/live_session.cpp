#include "app/live/live_session.hpp"

#include <cstdio>

namespace metaplast::live {

std::vector<std::filesystem::path> asset_folders(const std::filesystem::path& data_dir) {
  return {std::filesystem::path(METAPLAST_WEB_DIR), data_dir / "web"};
}

const char* to_string(RunState state) {
  switch (state) {
    case RunState::running:
      return "running";
    case RunState::finished:
      return "finished";
    case RunState::stopped:
      return "stopped";
    case RunState::interrupted:
      return "interrupted";
    case RunState::failed:
      return "failed";
  }
  return "unknown";
}

LiveSession::LiveSession(const LiveOptions& options, std::vector<std::filesystem::path> assets,
                         nlohmann::json run, std::function<void(const std::string& from)> on_stop) {
  ServerOptions server;
  server.listen = options.listen;
  server.port = options.port.value_or(0);
  server.assets = std::move(assets);
  server.files = options.files;
  server_ = std::make_unique<LiveServer>(feed_, server, std::move(on_stop));
  url_ = server_->url();
  feed_.publish("run", run);
  status(RunState::running, 0);
  if (server_->token_required()) {
    std::printf(
        "live view: %s (listening on %s: the token in this address is needed for every "
        "request; it is printed only here)\n",
        url_.c_str(), options.listen.c_str());
  } else {
    std::printf("live view: %s\n", url_.c_str());
  }
  std::fflush(stdout);
}

LiveSession::~LiveSession() = default;

void LiveSession::end(RunState state, int exit_status, const std::string& message) {
  status(state, exit_status, message);
  // Connected pages take it within about 100 ms (the server polls the feed); a page that does
  // not within `linger` is not waited for longer.
  server_->wait_delivered(feed_.last_seq(), linger);
}

void LiveSession::status(RunState state, int exit_status, const std::string& message) {
  nlohmann::json body = {{"state", to_string(state)}, {"exit_status", exit_status}};
  if (!message.empty()) body["message"] = message;
  feed_.publish("status", body);
}

}  // namespace metaplast::live
