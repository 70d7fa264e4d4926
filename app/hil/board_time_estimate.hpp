// The time a real bench takes for a training run with layers on the array board: the device
// operations, the board's own (device) time and the link time of every request the host sends,
// counted as the code sends them (the model and its assumptions: docs/campaigns.md, "Board
// time"):
//   - the initial programming: one batched program-and-verify per board layer, of every device
//     (and, per unformed cell met, the chunk the board refuses before the driver resends it);
//   - every training step: one batched program-and-verify per board layer whose levels changed
//     (BoardStore::program -> BoardCells::program), in chunks of
//     instruments::program_verify_entries_per_request;
//   - every epoch: the snapshot's READ of every placed cell (one list of all board devices);
//     every --reread-every K steps: a READ of each board layer's devices;
//   - the journal's READ_COUNTERS of the whole array at the start and at the end of the run;
//   - the session's housekeeping: IDENTIFY, the level table, CONFIGURE, the watchdog, SAFE_STATE.
// Frame sizes are the encoded messages of protocols/, device times devices::TimingModel's (the
// simulated board's clock), link times a devices::LinkModel. How many devices change level per
// step, and how many pulses a write takes, come from a LevelChangeModel: the stated one, or the
// statistics of a pilot run's folder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "app/learning/train_config.hpp"
#include "devices/board_timing.hpp"
#include "instruments/board_types.hpp"

namespace metaplast::hil {

// How many of a board layer's devices change level in a training step, and what writing one
// costs.
struct LevelChanges {
  // Per training step and board layer: the fraction of the layer's devices programmed.
  double changed_fraction = 0.0;
  // Batched program-and-verify calls per training step and board layer: below 1 when some steps
  // change nothing (nothing is sent), above 1 when cells that fail their band add rounds on
  // spare cells.
  double batches_per_step = 1.0;
  // PROGRAM_VERIFY requests per call (a pilot's: its calls' sizes vary); 0: from the mean cells
  // per call.
  double requests_per_batch = 0.0;
  // Mean program-and-verify pulses per device programmed. Every pulse is followed by a verify
  // read, and every device is read once before its first pulse (docs/protocol.md 4.6): reads =
  // pulses + 1 per device.
  double pulses_per_write = 0.0;
};

// The level changes of a run: its first epoch (from the initial weights, when most levels move)
// and every later epoch (consolidated weights move far less), and the initial programming of
// every device.
struct LevelChangeModel {
  LevelChanges first_epoch;
  LevelChanges later_epochs;
  double initial_pulses_per_write = 0.0;
  // The fraction of the devices whose cell turns out unformed at the initial programming: the
  // board refuses its PROGRAM_VERIFY chunk (not_formed) before running anything, and the driver
  // sends the chunk again without it. A chip formed at the bench, its bad cells in the chip
  // registry, has none.
  double unformed_fraction = 0.0;
  std::string source;  // where the figures come from, for the plan
};

// The stated model (docs/campaigns.md, "Board time": measured on the paper's Fig. 5a network).
LevelChangeModel stated_level_change_model();

// The statistics of a pilot: a training run with layers on a board (finished, or stopped after
// at least one epoch). Its journal.jsonl gives the cells and pulses of every batch of the
// initial programming and of the epochs checkpointed (the first one, and the others: with only
// one epoch, later_epochs = first_epoch, which overestimates); its config.json the board layers'
// devices and the training steps of those epochs. Throws std::runtime_error naming the folder or
// file when they are missing, malformed, or hold no board layer or no finished epoch.
LevelChangeModel level_change_model_from_run(const std::filesystem::path& run_dir);

// What a training run with board layers does, in the terms of the count.
struct BoardTrainingShape {
  std::vector<std::size_t> board_layer_devices;  // devices of each board layer
  std::uint64_t steps = 0;                       // training steps, every task and epoch
  std::uint64_t first_epoch_steps = 0;           // of them in the run's first epoch
  std::uint64_t epochs = 0;                      // epochs, every task (one snapshot each)
  std::uint64_t reread_every = 0;                // re-read every K steps (0: never)
  std::size_t array_cells = 128 * 128;           // READ_COUNTERS at the start and end
  double pulse_width_ns = 100;                   // mean of the SET and RESET widths
  std::size_t board_devices() const;
};

// Training steps of one epoch over `images` training images at batch `batch` (the trainer's
// loop: batches of `batch`, the last one shorter, none of fewer than 2 images).
std::uint64_t steps_per_epoch(std::size_t images, std::size_t batch);

// The shape of a training configuration: layers 784 -> hidden -> 10 (inputs x outputs weights,
// devices_per_weight(mapping) devices each), the layers placed on the board, tasks x epochs
// epochs of `train_images_per_task` images before train-limit and validation (60,000 for MNIST
// and Fashion-MNIST), and the pulse widths of `settings`. No board layer: empty
// board_layer_devices. Throws std::invalid_argument for a bad placement or mapping.
BoardTrainingShape board_training_shape(const learning::TrainConfig& config,
                                        const instruments::BoardSettings& settings = {},
                                        std::size_t train_images_per_task = 60'000);

// Requests, bytes, device operations and board time of some work on the board.
struct BoardWork {
  double pulses = 0, reads = 0;  // device operations (verify reads are reads)
  double requests = 0;           // request frames, one reply frame each
  double array_requests = 0;     // those that operate on the array (PROGRAM_VERIFY, READ)
  double bytes = 0;              // request and reply frames on the wire, both ways
  double array_bytes = 0;        // of the array requests
  double board_ns = 0;           // device time: pulses, reads, command overhead per array request

  double operations() const { return pulses + reads; }
  double link_ns(const devices::LinkModel& link) const { return link.time_ns(requests, bytes); }
  // What the simulated board's device clock (GET_STATUS uptime_ms) advances by for this work:
  // the board time and the link time of the array requests at the timing model's baud.
  double sim_clock_ns(const devices::TimingModel& timing) const;
  BoardWork& operator+=(const BoardWork& other);
};

// Counts board work as the host's driver sends it: its chunk sizes for a board advertising
// `max_payload_bytes`, the frames' encoded sizes, the timing model's times. Counts may be means
// (fractional): a call of 2.5 cells in chunks of 640 is one request of 2.5 entries' bytes.
class BoardWorkCounter {
 public:
  explicit BoardWorkCounter(const devices::TimingModel& timing = {}, double pulse_width_ns = 100,
                            std::size_t max_payload_bytes = 4160);
  // `calls` batched program-and-verify calls (instruments::ArrayBoard::program_and_verify) of
  // `cells` entries each, `pulses_per_cell` pulses per entry on average, in
  // `requests_per_call` PROGRAM_VERIFY requests each (0: the chunks of `cells` entries).
  void program_and_verify(double calls, double cells, double pulses_per_cell,
                          double requests_per_call = 0);
  // `calls` reads (ArrayBoard::read) of `cells` listed cells each.
  void read(double calls, double cells);
  // `refusals` PROGRAM_VERIFY chunks of `chunk_cells` entries refused not_formed (nothing runs).
  void refused_program_verify(double refusals, double chunk_cells);
  // A board session (ArrayBoard::open, configure, close): IDENTIFY, SET_LEVELS, CONFIGURE,
  // WATCHDOG_ARM and SAFE_STATE, for a board of `levels` levels (an IDENTIFY answer the size of
  // the simulated board's). No device time.
  void session(std::size_t levels = 9);
  // `calls` READ_COUNTERS of the whole array of `cells` cells (ArrayBoard::counters_array). The
  // simulated board spends no device time on them: link time only.
  void read_counters_array(double calls, std::size_t cells);
  const BoardWork& work() const { return work_; }

 private:
  // Requests of `cells` entries in chunks of `chunk`, bytes linear in the entries.
  struct Chunked {
    std::size_t chunk = 0;
    double fixed_bytes = 0, bytes_per_entry = 0;  // request + reply frames
    double requests(double cells) const;
  };
  // `calls` calls of `cells` entries in `requests_per_call` requests each (0: kind's chunks).
  void add(double calls, const Chunked& kind, double cells, bool on_array, double board_ns,
           double requests_per_call = 0);

  devices::TimingModel timing_;
  double pulse_width_ns_;
  Chunked program_verify_, refused_program_verify_, read_, counters_;
  BoardWork work_;
};

// The board work of a whole training run of this shape under this model.
BoardWork estimate_board_training(const BoardTrainingShape& shape, const LevelChangeModel& model,
                                  const devices::TimingModel& timing = {});

}  // namespace metaplast::hil
