// What the training loop (trainer.hpp) knows of the world around it: where the quantized weights
// live (a WeightBackend) and who watches the run (TrainingObservers), as spdlog's logger knows its
// sinks. The loop itself knows nothing of boards, journals or reports: the hardware in the loop
// implements these interfaces in app/hil/ (docs/architecture.md, "The training loop and its
// hooks"); a live view or a Python callback is one more observer.
//
// Order of the calls in a run (one thread, the loop's):
//   make the backend (the layer sizes are known once the data is loaded)
//   on_run_start                          fresh run or resume, before any weight is programmed
//   backend.program_initial or .load      the weights on their devices
//   on_weights_ready                      fresh: after the initial programming; resume: after load
//   per epoch:  on_epoch_start
//               per step: on_step_start, backend.after_step per layer, backend.end_step,
//                         on_step_end
//               backend.end_epoch, on_epoch_trained (before the checkpoint: reads made here are
//               in its counts), checkpoint written, on_checkpoint
//   on_finish                             the summary, before summary.json is written
// An exception from a hook propagates out of the run; what was checkpointed stays resumable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace metaplast::learning {

// Where every layer's quantized weights W_Q live, and what the forward pass sees of them (the
// "effective" weights). `wq` values are always levels of the run's quantizer; `effective` is the
// layer's weight buffer the forward pass reads.
class WeightBackend {
 public:
  virtual ~WeightBackend() = default;

  // Describes the placement for config.json's and summary.json's "store".
  virtual nlohmann::json describe() const = 0;
  // Programs every weight of layer `layer` (initial writes, counted in no epoch).
  virtual void program_initial(std::size_t layer, std::span<const float> wq,
                               std::span<float> effective) = 0;
  // After the optimizer step of layer `layer`: programs the weights whose level changed; returns
  // how many did. `changed` (ascending) lists the wq[k] the step changed; every other element is
  // as it was at the previous call (or program_initial).
  virtual std::size_t after_step(std::size_t layer, std::span<const float> wq,
                                 std::span<float> effective,
                                 std::span<const std::uint32_t> changed) = 0;
  // When layer `layer`'s effective weights are the levels of wq themselves and change nowhere but
  // where after_step programs (an ideal store): the elements the last after_step set. The network
  // then updates its exact product there instead of packing the layer again every step. nullopt
  // (the default) for device weights.
  virtual std::optional<std::span<const std::uint32_t>> effective_changes(
      std::size_t /*layer*/) const {
    return std::nullopt;
  }
  // Whether layer `layer`'s after_step mostly waits (for a board, over its link). The loop then
  // runs it (every such layer in order, on one thread of its own) while it updates the other
  // layers, so the waits overlap their work: such a layer's after_step must touch nothing the
  // other layers' after_step touch. Asked once per layer, when the backend is made. False by
  // default.
  virtual bool waits_on_link(std::size_t /*layer*/) const { return false; }
  // After every layer of a training step (device clocks, periodic re-reads). Per layer.
  virtual void end_step(const std::vector<std::span<float>>& effective) = 0;
  // Closes the books of an epoch; returns its device writes.
  virtual std::uint64_t end_epoch(const std::string& task, int epoch) = 0;
  // Device writes of the whole run so far (initial writes included).
  virtual std::uint64_t total_writes() const = 0;
  // Checkpoint state, and its restoration (which sets the effective weights). load throws
  // std::runtime_error when the state does not match the placement.
  virtual std::string save() const = 0;
  virtual void load(const std::string& state, const std::vector<std::span<float>>& effective) = 0;
  // summary.json's "writes" object.
  virtual nlohmann::json writes_json() const = 0;
};

// The run as the hooks see it.
struct RunStart {
  std::filesystem::path out_dir;
  bool resumed = false;
  // Where training (re)starts: tasks before task_index are done, and epochs_done of it.
  std::size_t task_index = 0, epochs_done = 0;
};

struct EpochStart {
  std::string task;
  std::size_t task_index = 0;
  int epoch = 0;            // 1-based within the task
  std::size_t samples = 0;  // training samples this epoch goes through
  std::size_t epochs = 0;   // in the whole run (tasks x epochs per task)
  int epoch_index = 0;      // 1-based over the whole run
};

struct StepEnd {
  std::uint64_t step = 0;         // steps of this session so far, 1-based
  std::size_t samples = 0;        // in this step's batch
  double loss_sum = 0.0;          // over the batch
  std::size_t correct = 0;        // in the batch
  std::size_t level_changes = 0;  // weights whose quantized level changed, every layer
};

struct EpochEnd {
  std::filesystem::path out_dir;
  std::string task;
  std::size_t task_index = 0;
  int epoch = 0;        // 1-based within the task
  int epoch_index = 0;  // 1-based over the whole run (task_index * epochs + epoch)
  // Where the checkpoint written after this epoch resumes.
  std::size_t next_task_index = 0, next_epochs_done = 0;
};

struct RunFinish {
  std::filesystem::path out_dir;
  std::vector<std::size_t> layer_sizes;  // inputs, hidden..., outputs
  // Host bytes per weight of the rule's consolidation state (rules depth and importance: 4).
  std::size_t consolidation_bytes = 0;
};

// Watches a run; every method does nothing unless overridden. Called on the loop's thread.
class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  virtual void on_run_start(const RunStart& /*run*/) {}
  virtual void on_weights_ready(const RunStart& /*run*/) {}
  virtual void on_epoch_start(const EpochStart& /*epoch*/) {}
  virtual void on_step_start(std::uint64_t /*step*/) {}
  virtual void on_step_end(const StepEnd& /*step*/) {}
  virtual void on_epoch_trained(const EpochEnd& /*epoch*/) {}
  virtual void on_checkpoint(const EpochEnd& /*epoch*/) {}
  // Adds to the summary (written to summary.json after the last observer returns).
  virtual void on_finish(const RunFinish& /*run*/, nlohmann::json& /*summary*/) {}
};

}  // namespace metaplast::learning
