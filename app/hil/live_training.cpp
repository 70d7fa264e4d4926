#include "app/hil/live_training.hpp"

#include <algorithm>
#include <cmath>

#include "app/live/live_updates.hpp"

namespace metaplast::hil {

nlohmann::json link_update(const instruments::LinkStats& link, std::uint64_t reboots,
                           std::uint64_t reconciliations) {
  return {{"resends", link.resends},
          {"bad_crc_nacks", link.bad_crc_nacks},
          {"corrupt_replies", link.corrupt_replies},
          {"stale_replies_discarded", link.stale_replies_discarded},
          {"reconnects", link.reconnects},
          {"reboots", reboots},
          {"reconciliations", reconciliations}};
}

namespace {

using Clock = std::chrono::steady_clock;

// Programming operations per device as a histogram of at most 40 bins: {"pulses": the bins'
// lower edges, "devices": how many devices fall in each}.
nlohmann::json writes_histogram(const std::vector<std::uint32_t>& per_device) {
  const std::uint32_t max =
      per_device.empty() ? 0 : *std::max_element(per_device.begin(), per_device.end());
  const std::uint32_t width = std::max<std::uint32_t>(1, (max + 40) / 40);
  std::vector<std::uint64_t> devices(max / width + 1, 0);
  for (const std::uint32_t w : per_device) ++devices[w / width];
  std::vector<std::uint64_t> edges(devices.size());
  for (std::size_t b = 0; b < edges.size(); ++b) edges[b] = b * width;
  return {{"pulses", edges}, {"devices", devices}, {"bin_width", width}};
}

}  // namespace

LiveTraining::LiveTraining(live::LiveFeed& feed, std::size_t step_every,
                           std::chrono::milliseconds min_interval)
    : feed_(feed), step_every_(std::max<std::size_t>(1, step_every)), min_interval_(min_interval) {}

void LiveTraining::on_epoch_start(const learning::EpochStart& epoch) {
  epoch_ = epoch;
  epoch_samples_seen_ = 0;
  point_steps_ = point_samples_ = point_correct_ = 0;  // a loss point belongs to one epoch
  point_loss_sum_ = 0.0;
  if (!started_) {  // a resumed run starts at the epoch after those done
    started_ = true;
    first_epoch_index_ = static_cast<std::size_t>(epoch.epoch_index);
  }
  publish_progress(0.0);
}

void LiveTraining::on_step_end(const learning::StepEnd& step) {
  epoch_samples_seen_ += step.samples;
  ++point_steps_;
  point_samples_ += step.samples;
  point_correct_ += step.correct;
  point_loss_sum_ += step.loss_sum;
  if (point_steps_ < step_every_) return;
  const auto now = Clock::now();
  if (now - last_point_ < min_interval_) return;
  const double samples = static_cast<double>(std::max<std::size_t>(point_samples_, 1));
  feed_.publish("step", {{"step", step.step},
                         {"epoch_index", epoch_.epoch_index},
                         {"steps", point_steps_},
                         {"loss", point_loss_sum_ / samples},
                         {"accuracy", static_cast<double>(point_correct_) / samples}});
  point_steps_ = point_samples_ = point_correct_ = 0;
  point_loss_sum_ = 0.0;
  last_point_ = now;
  publish_progress(static_cast<double>(epoch_samples_seen_) /
                   static_cast<double>(std::max<std::size_t>(epoch_.samples, 1)));
}

void LiveTraining::publish_progress(double fraction_of_epoch) {
  const double epochs = static_cast<double>(std::max<std::size_t>(epoch_.epochs, 1));
  const double done =
      static_cast<double>(epoch_.epoch_index - 1) + std::min(fraction_of_epoch, 1.0);
  feed_.publish("progress", pace_.progress(done / epochs,
                                           epoch_.task + " epoch " + std::to_string(epoch_.epoch) +
                                               " (" + std::to_string(epoch_.epoch_index) + " of " +
                                               std::to_string(epoch_.epochs) + ")"));
}

void LiveTraining::on_epoch_report(const learning::EpochReport& report) {
  nlohmann::json evaluations = nlohmann::json::array();
  for (const auto& e : report.evaluations) {
    evaluations.push_back(
        {{"task", e.task}, {"split", e.split}, {"accuracy", e.accuracy}, {"loss", e.loss}});
  }
  const int epoch_index = static_cast<int>(report.task_index) * report.epochs + report.epoch;
  feed_.publish("epoch", {{"epoch_index", epoch_index},
                          {"task", report.task},
                          {"epoch", report.epoch},
                          {"train_loss", report.train_loss},
                          {"train_accuracy", report.train_accuracy},
                          {"evaluations", evaluations}});
  writes_per_epoch_.push_back(report.epoch_writes);
  nlohmann::json writes = {{"per_epoch", writes_per_epoch_},
                           {"first_epoch_index", first_epoch_index_},
                           {"total", report.total_writes}};
  if (stores_ != nullptr) writes["histogram"] = writes_histogram(stores_->device_writes());
  feed_.publish("writes", writes);
}

void LiveTraining::on_board_snapshot(const ArraySnapshot& snapshot, const nlohmann::json& link) {
  nlohmann::json map = nlohmann::json::array();
  for (const float g : snapshot.conductance_us) {
    // One decimal of a uS is below the read noise; keeps the update near 100 KB.
    map.push_back(std::isnan(g) ? nlohmann::json(nullptr)
                                : nlohmann::json(std::round(g * 10.0f) / 10.0f));
  }
  feed_.publish("board_map", {{"rows", snapshot.rows},
                              {"cols", snapshot.cols},
                              {"conductance_us", map},
                              {"caption", "read after " + snapshot.task + " epoch " +
                                              std::to_string(snapshot.epoch) + " (board " +
                                              snapshot.board_serial + ")"}});
  std::uint64_t pulses = 0, max_pulses = 0, given_up = 0;
  for (const auto& row : snapshot.verify) {
    pulses += row.pulses;
    max_pulses = std::max<std::uint64_t>(max_pulses, row.pulses);
    if (!row.passed) ++given_up;
  }
  const double cells = static_cast<double>(snapshot.verify.size());
  feed_.publish("verify", {{"epoch_index", snapshot.epoch_index},
                           {"cells", snapshot.verify.size()},
                           {"pulses_mean", cells > 0 ? static_cast<double>(pulses) / cells : 0.0},
                           {"pulses_max", max_pulses},
                           {"given_up", given_up}});
  feed_.publish("link", link);
}

void LiveTraining::on_finish(const learning::RunFinish& /*run*/, nlohmann::json& /*summary*/) {
  feed_.publish("progress", {{"fraction", 1.0}, {"what", "done"}, {"eta_s", 0.0}});
}

}  // namespace metaplast::hil
