// What a live view shows (docs/live.md), as a feed of updates: the run's threads publish, the
// live server's threads read. Publishing never waits on a reader: an update is serialised once
// and appended to a bounded ring under a short lock; a reader that falls more than the ring's
// length behind is told so (and the server drops it) instead of holding the run back.
//
// Kinds of update (the body of each is documented in docs/live.md, "Updates"):
//   state kinds, of which a new client needs only the latest: "run" (what runs, where, since when),
//     "progress" (fraction, ETA), "status" (running / finished / failed / interrupted, exit
//     status), "board_map" (128 x 128 conductances), "link" (retries, CRC errors, reboots),
//     "verify" (pulses per cell, cells given up), "campaign" (the step list and states),
//     "writes" (pulses per epoch, per-device histogram), "plot" (a measurement's series);
//   series kinds, of which a new client needs the whole history: "epoch" (accuracy and loss per
//     task), "step" (loss every N steps).
// The snapshot() a new client starts from holds the latest of every state kind and the last
// kSeriesHistory updates of every series kind.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace metaplast::live {

struct Update {
  std::uint64_t seq = 0;  // 1, 2, ... in publishing order
  std::string kind;
  std::string data;  // the body, serialised JSON
};

class LiveFeed {
 public:
  // ring: updates kept for readers that are behind; series_history: per series kind, for
  // snapshot().
  explicit LiveFeed(std::size_t ring = 4096, std::size_t series_history = 20000);

  // Any thread. Never waits on a reader: the lock is held for a move into the ring.
  void publish(const std::string& kind, const nlohmann::json& body);

  // The state a new client starts from: {"seq": last seq, "state": {kind: body}, "series":
  // {kind: [body, ...]}}.
  nlohmann::json snapshot() const;

  // Updates after `seq` (at most `max`). `behind` is set when updates after `seq` have already
  // left the ring: the reader missed some and should start again from snapshot().
  std::vector<Update> since(std::uint64_t seq, std::size_t max, bool& behind) const;

  // Waits at most `timeout` for an update after `seq`; true if there is one. For the server's
  // threads (the run's threads never wait).
  bool wait_for(std::uint64_t seq, std::chrono::milliseconds timeout) const;

  std::uint64_t last_seq() const;

  // Whether `kind` keeps a history (a series kind) rather than only its latest body.
  static bool is_series(const std::string& kind);

 private:
  const std::size_t ring_size_, series_history_;
  mutable std::mutex mutex_;
  mutable std::condition_variable published_;
  std::deque<Update> ring_;
  std::map<std::string, std::string> state_;               // kind -> latest body
  std::map<std::string, std::deque<std::string>> series_;  // kind -> bodies
  std::uint64_t last_seq_ = 0;
};

}  // namespace metaplast::live
