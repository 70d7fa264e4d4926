// A training run as its live view shows it (docs/live.md, "Training"): progress and ETA, the
// batch loss every few steps, every epoch's test accuracy per task, programming pulses per epoch
// and per device, and, with a layer on a board, the board's conductance map, verify statistics and
// link health after every epoch. Publishes to a live::LiveFeed, which never waits on a reader; the
// work per training step is a counter and, every `step_every` steps, one small update.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "app/hil/placement.hpp"
#include "app/hil/snapshot_h5.hpp"
#include "app/learning/trainer.hpp"
#include "app/learning/training_hooks.hpp"
#include "app/live/live_feed.hpp"
#include "app/live/live_updates.hpp"
#include "instruments/board_link.hpp"

namespace metaplast::hil {

// The "link" update (docs/live.md, "Updates"): the link's counters, the board reboots detected and
// the reconciliations done after them. Every command on a board publishes its link this way.
nlohmann::json link_update(const instruments::LinkStats& link, std::uint64_t reboots,
                           std::uint64_t reconciliations);

class LiveTraining final : public learning::TrainingObserver {
 public:
  // A loss point every `step_every` steps, but not more often than every `min_interval`: a point
  // is the mean over the steps since the previous one (fast steps make fewer, smoother points,
  // and a browser that draws them costs the run nothing measurable: bench/live_cost.py).
  explicit LiveTraining(live::LiveFeed& feed, std::size_t step_every = 10,
                        std::chrono::milliseconds min_interval = std::chrono::milliseconds(200));

  // Once the stores exist (the loop's make_backend).
  void attach(NetworkStores& stores) { stores_ = &stores; }

  void on_epoch_start(const learning::EpochStart& epoch) override;
  void on_step_end(const learning::StepEnd& step) override;
  void on_finish(const learning::RunFinish& run, nlohmann::json& summary) override;

  // learning::RunControl::on_epoch_end: the epoch's evaluations and writes.
  void on_epoch_report(const learning::EpochReport& report);

  // After the board records' epoch snapshot: the map (NaN: no weight placed), the verify rows of
  // the epoch's programming, and the link's counters (`link`: resends, bad_crc_nacks,
  // corrupt_replies, reconnects, reboots, reconciliations).
  void on_board_snapshot(const ArraySnapshot& snapshot, const nlohmann::json& link);

 private:
  void publish_progress(double fraction_of_epoch);

  live::LiveFeed& feed_;
  const std::size_t step_every_;
  const std::chrono::milliseconds min_interval_;
  NetworkStores* stores_ = nullptr;
  // Since the last loss point.
  std::size_t point_steps_ = 0, point_samples_ = 0, point_correct_ = 0;
  double point_loss_sum_ = 0.0;
  std::chrono::steady_clock::time_point last_point_;
  learning::EpochStart epoch_;
  std::size_t epoch_samples_seen_ = 0, first_epoch_index_ = 0;
  live::Pace pace_;  // the ETA from this session's epochs
  bool started_ = false;
  std::vector<std::uint64_t> writes_per_epoch_;
};

}  // namespace metaplast::hil
