// LiveFeed (live_feed.hpp).
#include "app/live/live_feed.hpp"

#include <algorithm>

namespace metaplast::live {

LiveFeed::LiveFeed(std::size_t ring, std::size_t series_history)
    : ring_size_(std::max<std::size_t>(ring, 1)), series_history_(series_history) {}

bool LiveFeed::is_series(const std::string& kind) { return kind == "epoch" || kind == "step"; }

void LiveFeed::publish(const std::string& kind, const nlohmann::json& body) {
  std::string data = body.dump();  // outside the lock: the only costly part
  {
    std::lock_guard lock(mutex_);
    if (is_series(kind)) {
      auto& history = series_[kind];
      history.push_back(data);
      if (history.size() > series_history_) history.pop_front();
    } else {
      state_[kind] = data;
    }
    ring_.push_back({++last_seq_, kind, std::move(data)});
    if (ring_.size() > ring_size_) ring_.pop_front();
  }
  published_.notify_all();
}

nlohmann::json LiveFeed::snapshot() const {
  std::lock_guard lock(mutex_);
  nlohmann::json state = nlohmann::json::object();
  for (const auto& [kind, data] : state_) state[kind] = nlohmann::json::parse(data);
  nlohmann::json series = nlohmann::json::object();
  for (const auto& [kind, history] : series_) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& data : history) items.push_back(nlohmann::json::parse(data));
    series[kind] = std::move(items);
  }
  return {{"seq", last_seq_}, {"state", std::move(state)}, {"series", std::move(series)}};
}

std::vector<Update> LiveFeed::since(std::uint64_t seq, std::size_t max, bool& behind) const {
  std::lock_guard lock(mutex_);
  std::vector<Update> out;
  behind = !ring_.empty() && seq + 1 < ring_.front().seq && seq < last_seq_;
  if (behind) return out;
  for (const auto& update : ring_) {
    if (update.seq <= seq) continue;
    if (out.size() == max) break;
    out.push_back(update);
  }
  return out;
}

bool LiveFeed::wait_for(std::uint64_t seq, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return published_.wait_for(lock, timeout, [&] { return last_seq_ > seq; });
}

std::uint64_t LiveFeed::last_seq() const {
  std::lock_guard lock(mutex_);
  return last_seq_;
}

}  // namespace metaplast::live
