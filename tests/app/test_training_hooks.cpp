// The training loop's hooks (app/learning/training_hooks.hpp): learning::train runs with any
// weight backend and calls its observers in the documented order; hil::run_training is that loop
// with the hardware's hooks and hands further observers their calls too.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "app/learning/training_hooks.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast::learning;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-hooks", name);
}

TrainConfig small_config() {
  TrainConfig c;
  c.tasks = {"mnist", "fashion"};
  c.epochs = 2;
  c.hidden = {32};
  c.train_limit = 400;
  c.batch = 100;
  c.threads = 2;
  c.seed = 4;
  c.mstar = 2.0f;
  c.data_dir = default_data_dir();
  return c;
}

// What a plain backend saw, for the test to check after the run (its after_step may run on
// the loop's link thread, where Catch's assertions are not safe).
struct PlainRecord {
  std::atomic<bool> unlisted_change{false};  // a weight changed that the list did not name
  std::mutex mutex;
  std::vector<std::set<std::thread::id>> after_step_threads;  // per layer
};

// Weights held as they are (what an ideal device would do), level changes counted as writes.
// Layers in `linked` say they wait on a link; the linked after_step throws at its call number
// `fail_at` (1-based; 0: never).
class PlainBackend final : public WeightBackend {
 public:
  PlainBackend() = default;
  PlainBackend(PlainRecord* record, std::set<std::size_t> linked, int fail_at = 0)
      : record_(record), linked_(std::move(linked)), fail_at_(fail_at) {}
  nlohmann::json describe() const override { return {{"backend", "plain (test)"}}; }
  bool waits_on_link(std::size_t layer) const override { return linked_.count(layer) == 1; }
  void program_initial(std::size_t layer, std::span<const float> wq,
                       std::span<float> effective) override {
    if (stored_.size() <= layer) stored_.resize(layer + 1);
    stored_[layer].assign(wq.begin(), wq.end());
    std::copy(wq.begin(), wq.end(), effective.begin());
  }
  // Compares every weight, not only the `listed` ones: a weight the list missed fails the test.
  std::size_t after_step(std::size_t layer, std::span<const float> wq, std::span<float> effective,
                         std::span<const std::uint32_t> listed) override {
    if (record_ != nullptr) {
      std::lock_guard lock(record_->mutex);
      if (record_->after_step_threads.size() <= layer) {
        record_->after_step_threads.resize(layer + 1);
      }
      record_->after_step_threads[layer].insert(std::this_thread::get_id());
    }
    if (linked_.count(layer) == 1 && ++linked_calls_ == fail_at_) {
      throw std::runtime_error("board link dropped (test)");
    }
    std::size_t changed = 0;
    for (std::size_t k = 0; k < wq.size(); ++k) {
      if (stored_[layer][k] == wq[k]) continue;
      const bool was_listed =
          std::binary_search(listed.begin(), listed.end(), static_cast<std::uint32_t>(k));
      if (record_ == nullptr) {
        REQUIRE(was_listed);  // on the loop's thread: no linked layers
      } else if (!was_listed) {
        record_->unlisted_change = true;
      }
      stored_[layer][k] = wq[k];
      effective[k] = wq[k];
      ++changed;
    }
    writes_ += changed;
    return changed;
  }
  void end_step(const std::vector<std::span<float>>& /*effective*/) override {}
  std::uint64_t end_epoch(const std::string& /*task*/, int /*epoch*/) override {
    const std::uint64_t epoch = writes_ - epoch_start_;
    epoch_start_ = writes_;
    return epoch;
  }
  std::uint64_t total_writes() const override { return writes_; }
  std::string save() const override { return {}; }
  void load(const std::string& /*state*/,
            const std::vector<std::span<float>>& /*effective*/) override {}
  nlohmann::json writes_json() const override { return {{"total", writes_.load()}}; }

 private:
  PlainRecord* record_ = nullptr;
  std::set<std::size_t> linked_;
  int fail_at_ = 0, linked_calls_ = 0;
  std::vector<std::vector<float>> stored_;
  std::atomic<std::uint64_t> writes_{0};
  std::uint64_t epoch_start_ = 0;
};

// Every call as a line, steps counted rather than listed.
class RecordingObserver final : public TrainingObserver {
 public:
  std::vector<std::string> calls;
  std::uint64_t steps_started = 0, steps_ended = 0, level_changes = 0, samples = 0;

  void on_run_start(const RunStart& run) override {
    calls.push_back("run_start " + std::string(run.resumed ? "resumed " : "fresh ") +
                    std::to_string(run.task_index) + "," + std::to_string(run.epochs_done));
  }
  void on_weights_ready(const RunStart& run) override {
    calls.push_back(std::string("weights_ready ") + (run.resumed ? "resumed" : "fresh"));
  }
  void on_epoch_start(const EpochStart& e) override {
    calls.push_back("epoch_start " + e.task + " " + std::to_string(e.epoch));
    // Where it is in the run (a live view's progress): 2 tasks x 2 epochs, 400 images each.
    CHECK(e.epochs == 4);
    CHECK(e.epoch_index == static_cast<int>(e.task_index * 2) + e.epoch);
    CHECK(e.samples == 400);
  }
  void on_step_start(std::uint64_t step) override {
    CHECK(step == steps_started + 1);
    ++steps_started;
  }
  void on_step_end(const StepEnd& step) override {
    CHECK(step.step == steps_started);
    ++steps_ended;
    level_changes += step.level_changes;
    samples += step.samples;
  }
  void on_epoch_trained(const EpochEnd& e) override {
    calls.push_back("epoch_trained " + e.task + " " + std::to_string(e.epoch) + " #" +
                    std::to_string(e.epoch_index));
  }
  void on_checkpoint(const EpochEnd& e) override {
    CHECK(fs::exists(e.out_dir / kCheckpointFile));
    calls.push_back("checkpoint next " + std::to_string(e.next_task_index) + "," +
                    std::to_string(e.next_epochs_done));
  }
  void on_finish(const RunFinish& run, nlohmann::json& summary) override {
    calls.push_back("finish " + std::to_string(run.layer_sizes.size()) + " layers");
    summary["observed_steps"] = steps_ended;
  }
};

TrainingHooks plain_hooks(const TrainConfig& config, RecordingObserver& observer) {
  TrainingHooks hooks(Quantizer::uniform(config.levels, -1.0f, 1.0f));
  hooks.make_backend = [](const std::vector<std::size_t>&) {
    return std::make_unique<PlainBackend>();
  };
  hooks.observers = {&observer};
  return hooks;
}

}  // namespace

TEST_CASE("the loop runs on any backend and calls the observers in the documented order",
          "[hooks]") {
  const TrainConfig config = small_config();
  const fs::path dir = fresh_dir("plain");
  RecordingObserver observer;
  TrainingHooks hooks = plain_hooks(config, observer);
  const nlohmann::json summary = train(config, dir, false, hooks);

  const std::vector<std::string> expected = {
      "run_start fresh 0,0",        "weights_ready fresh", "epoch_start mnist 1",
      "epoch_trained mnist 1 #1",   "checkpoint next 0,1", "epoch_start mnist 2",
      "epoch_trained mnist 2 #2",   "checkpoint next 1,0", "epoch_start fashion 1",
      "epoch_trained fashion 1 #3", "checkpoint next 1,1", "epoch_start fashion 2",
      "epoch_trained fashion 2 #4", "checkpoint next 2,0", "finish 3 layers"};
  CHECK(observer.calls == expected);
  // 400 images a task, batches of 100: 4 steps an epoch, 16 in all.
  CHECK(observer.steps_started == 16);
  CHECK(observer.steps_ended == 16);
  CHECK(observer.samples == 1600);
  CHECK(summary["observed_steps"] == 16);
  CHECK(summary["store"]["backend"] == "plain (test)");
  // The level changes the observer saw are the backend's writes.
  CHECK(summary["writes"]["total"].get<std::uint64_t>() == observer.level_changes);
  CHECK(observer.level_changes > 0);
  fs::remove_all(dir);
}

TEST_CASE("a plain backend gives the numbers of the hardware loop's ideal stores, bit for bit",
          "[hooks]") {
  const TrainConfig config = small_config();
  const fs::path plain_dir = fresh_dir("plain-same"), ideal_dir = fresh_dir("ideal-same");
  RecordingObserver observer;
  TrainingHooks hooks = plain_hooks(config, observer);
  const nlohmann::json plain = train(config, plain_dir, false, hooks);
  RecordingObserver extra;
  const nlohmann::json ideal = metaplast::hil::run_training(config, ideal_dir, false, {}, {&extra});
  CHECK(plain["after_task"] == ideal["after_task"]);
  // Uniform levels and pixels: every layer's product exact, on both (the ideal stores report
  // their changes to the network, the plain backend does not: same bits).
  const nlohmann::json exact = std::vector<std::string>(config.hidden.size() + 1, "exact");
  CHECK(plain["forward_product"] == exact);
  CHECK(ideal["forward_product"] == exact);
  CHECK(plain["final_other_bn_stats"] == ideal["final_other_bn_stats"]);
  // hil::run_training hands its extra observers every call too, after its own.
  CHECK(extra.calls == observer.calls);
  CHECK(ideal["observed_steps"] == 16);
  // Ideal stores count a level change as one write, as the plain backend does.
  const auto& writes = ideal["writes"];
  CHECK(writes["total"].get<std::uint64_t>() - writes["initial"].get<std::uint64_t>() ==
        extra.level_changes);
  fs::remove_all(plain_dir);
  fs::remove_all(ideal_dir);
}

TEST_CASE("a layer that waits on a link is programmed on a thread of its own, same numbers",
          "[hooks]") {
  const TrainConfig config = small_config();
  const fs::path plain_dir = fresh_dir("unlinked"), linked_dir = fresh_dir("linked");
  RecordingObserver observer;
  TrainingHooks hooks = plain_hooks(config, observer);
  const nlohmann::json plain = train(config, plain_dir, false, hooks);

  PlainRecord record;
  RecordingObserver linked_observer;
  TrainingHooks linked_hooks = plain_hooks(config, linked_observer);
  linked_hooks.make_backend = [&](const std::vector<std::size_t>&) {
    return std::make_unique<PlainBackend>(&record, std::set<std::size_t>{1});
  };
  const nlohmann::json linked = train(config, linked_dir, false, linked_hooks);
  // The layers' updates are each other's independent: the numbers of one layer after the other.
  CHECK(linked["after_task"] == plain["after_task"]);
  CHECK(linked["final_other_bn_stats"] == plain["final_other_bn_stats"]);
  CHECK(linked["writes"] == plain["writes"]);
  CHECK(linked_observer.level_changes == observer.level_changes);
  CHECK(linked_observer.calls == observer.calls);
  CHECK_FALSE(record.unlisted_change.load());
  // Layer 1 on the link thread (one per step), layer 0 on the loop's own thread.
  REQUIRE(record.after_step_threads.size() == 2);
  CHECK(record.after_step_threads[0].size() == 1);
  CHECK(record.after_step_threads[0].count(std::this_thread::get_id()) == 1);
  CHECK(record.after_step_threads[1].count(std::this_thread::get_id()) == 0);

  // A link that fails mid-run stops it with the link's error, from the loop's thread.
  const fs::path failing_dir = fresh_dir("link-fails");
  PlainRecord failing_record;
  RecordingObserver failing_observer;
  TrainingHooks failing_hooks = plain_hooks(config, failing_observer);
  failing_hooks.make_backend = [&](const std::vector<std::size_t>&) {
    return std::make_unique<PlainBackend>(&failing_record, std::set<std::size_t>{1}, 3);
  };
  CHECK_THROWS_WITH(train(config, failing_dir, false, failing_hooks),
                    Catch::Contains("board link dropped (test)"));
  CHECK(failing_observer.steps_ended == 2);
  fs::remove_all(plain_dir);
  fs::remove_all(linked_dir);
  fs::remove_all(failing_dir);
}

TEST_CASE("a resumed run tells its observers where it starts again", "[hooks]") {
  const TrainConfig config = small_config();
  const fs::path dir = fresh_dir("resume");
  std::atomic<bool> stop{true};
  RunControl control;
  control.stop_after_epoch = &stop;
  RecordingObserver first;
  TrainingHooks hooks = plain_hooks(config, first);
  CHECK(train(config, dir, false, hooks, control)["status"] == "stopped");
  CHECK(first.calls.back() == "checkpoint next 0,1");
  RecordingObserver second;
  TrainingHooks again = plain_hooks(config, second);
  CHECK(train(config, dir, true, again)["status"] == "finished");
  REQUIRE(second.calls.size() >= 3);
  CHECK(second.calls[0] == "run_start resumed 0,1");
  CHECK(second.calls[1] == "weights_ready resumed");
  CHECK(second.calls[2] == "epoch_start mnist 2");
  CHECK(second.steps_started == 12);
  fs::remove_all(dir);
}
