// The live view's web server (docs/live.md): one page and its assets, the feed's snapshot as JSON
// and its updates as Server-Sent Events, and one action, "stop after this epoch/step". Boost.Beast
// on an io_context thread of its own; the run's threads only publish to the LiveFeed.
//
// Safety: binds 127.0.0.1 unless told another address; then every request needs the token
// (query "token=" or header "Authorization: Bearer <token>"), which url() carries and metaplast
// prints once. The stop action needs the token on every address. Requests are bounded (header and
// body sizes, a deadline to arrive); connections are bounded (beyond max_connections: 503); a
// client that does not take its updates within write_timeout is dropped, never waited for; bad
// requests get 4xx. Nothing a request says reaches a shell or a path outside the asset list.
//
// Endpoints:
//   GET  /                      the page (index.html)
//   GET  /assets/<name>         the page's scripts and styles, from a fixed list
//   GET  /api/snapshot          LiveFeed::snapshot() as JSON
//   GET  /api/events?since=N    text/event-stream: "id: <seq>\nevent: <kind>\ndata: <json>\n\n"
//                               from update N+1 on; a client too far behind gets "event:
//                               resync" and is closed (it reloads the snapshot)
//   GET  /files/<path>          with ServerOptions::files: a file of the run's folder, or a
//                               listing of one of its folders (app/live/run_files.hpp)
//   POST /api/stop              asks the run to stop after this epoch or step (202); token always
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/live/live_feed.hpp"

namespace metaplast::live {

struct ServerOptions {
  std::string listen = "127.0.0.1";  // --listen ADDR
  unsigned short port = 0;           // 0: any free port
  std::size_t max_connections = 64;
  std::size_t max_request_bytes = 8192;              // header and body together
  std::chrono::milliseconds request_timeout{10000};  // a whole request must arrive within
  std::chrono::milliseconds write_timeout{5000};     // an update must be taken within
  // An event stream is written at most this often, the updates since the last write together:
  // a browser on the run's own machine wakes (and takes CPU from the run) once a second, not at
  // every update (bench/live_cost.py).
  std::chrono::milliseconds event_interval{1000};
  // Folders searched in order for index.html, live.js, live.css, uPlot.iife.min.js and
  // uPlot.min.css, read once at start (live::asset_folders(): the source tree's web/ and
  // <data>/web/).
  std::vector<std::filesystem::path> assets;
  // The run's folder, whose files the page links to (GET /files/...); empty: none served. It may
  // not exist yet when the server starts (a campaign makes it).
  std::filesystem::path files;
  std::size_t max_file_bytes = std::size_t{16} << 20;
};

class LiveServer {
 public:
  // Reads the assets (std::runtime_error naming a missing one), binds and starts serving. `on_stop`
  // is called (on the server's thread) for an accepted stop request, with the requesting address.
  // Throws std::invalid_argument for an address that is not an IP address, std::runtime_error when
  // it cannot bind (the message names the port).
  LiveServer(LiveFeed& feed, ServerOptions options,
             std::function<void(const std::string& from)> on_stop);
  // Closes every connection and joins the server's thread.
  ~LiveServer();
  LiveServer(const LiveServer&) = delete;
  LiveServer& operator=(const LiveServer&) = delete;

  unsigned short port() const;
  // Where to open the page: http://ADDR:PORT/?token=TOKEN.
  std::string url() const;
  const std::string& token() const;
  // Every request needs the token (a listener that is not loopback).
  bool token_required() const;
  std::size_t open_connections() const;
  // Waits until every open event stream has been sent every update up to `seq` (or has closed),
  // at most `timeout`; true if so. For the last status of a command that is about to exit.
  bool wait_delivered(std::uint64_t seq, std::chrono::milliseconds timeout) const;

  struct Impl;  // live_server.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

// A fresh random token (128 bits from the system's random source, hex).
std::string random_token();

}  // namespace metaplast::live
