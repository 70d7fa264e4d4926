#include "app/hil/board_time_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include "app/hil/journal.hpp"
#include "app/hil/placement.hpp"
#include "app/learning/trainer.hpp"
#include "common/json_file.hpp"
#include "protocols/board_messages.hpp"
#include "protocols/frame.hpp"

namespace metaplast::hil {

namespace fs = std::filesystem;
namespace p = metaplast::protocols;

namespace {

constexpr std::size_t kInputs = 784, kOutputs = 10;

// Bytes of one request frame and its reply frame, as encoded.
template <class Request, class Reply>
double frame_bytes(const Request& request, const Reply& reply) {
  return static_cast<double>(
      p::encode(request).size() +
      p::encode_response(p::ResponseStatus{p::Status::kOk, 1, 0}, reply).size() +
      2 * p::kFrameOverheadBytes);
}

p::ProgramVerifyRequest program_verify_request(std::size_t entries) {
  p::ProgramVerifyRequest request;
  request.batch = {1, 0, static_cast<std::uint32_t>(entries)};
  request.entries.assign(entries, {0, 1, 20, 500});
  request.expected_boot_id = 1;
  return request;
}

double program_verify_bytes(std::size_t entries) {
  p::ProgramVerifyResponse reply;
  reply.batch_id = 1;
  reply.results.assign(entries, {});
  return frame_bytes(program_verify_request(entries), reply);
}

// A request refused not_formed: its frame and the refusal's.
double refused_program_verify_bytes(std::size_t entries) {
  return static_cast<double>(p::encode(program_verify_request(entries)).size() +
                             p::encode_error_response({p::Status::kNotFormed, 1, 0}).size() +
                             2 * p::kFrameOverheadBytes);
}

double read_bytes(std::size_t cells) {
  const p::ReadRequest request{p::Selection::list(std::vector<std::uint16_t>(cells, 0)), 0,
                               static_cast<std::uint16_t>(cells)};
  p::ReadResponse reply;
  reply.codes.assign(cells, 0);
  return frame_bytes(request, reply);
}

double counters_bytes(std::size_t cells) {
  const p::ReadCountersRequest request{p::Selection::array(), 0, static_cast<std::uint16_t>(cells)};
  p::ReadCountersResponse reply;
  reply.counters.assign(cells, {});
  return frame_bytes(request, reply);
}

// Every message here grows by a fixed number of bytes per entry: two encodings give the line.
template <class Bytes>
std::pair<double, double> bytes_line(Bytes bytes) {
  const double one = bytes(1), per_entry = bytes(2) - one;
  return {one - per_entry, per_entry};
}

std::runtime_error pilot_error(const fs::path& where, const std::string& what) {
  return std::runtime_error("pilot " + where.string() + ": " + what +
                            " (give the folder of a training run with layers on a board that "
                            "finished at least one epoch)");
}

}  // namespace

// A pilot of the paper's Fig. 5a step (784-1024-512-10, output layer on the simulated board,
// m* = 3, 3 epochs per task; docs/campaigns.md "Board time").
LevelChangeModel stated_level_change_model() {
  LevelChangeModel m;
  m.first_epoch = {0.00295, 0.953, 0.0, 2.18};
  m.later_epochs = {1.99e-5, 0.09, 0.0, 2.16};
  m.initial_pulses_per_write = 1.78;
  m.source = "stated model";
  return m;
}

std::uint64_t steps_per_epoch(std::size_t images, std::size_t batch) {
  if (images < 2 || batch == 0) return 0;
  return (images - 2) / batch + 1;
}

std::size_t BoardTrainingShape::board_devices() const {
  return std::accumulate(board_layer_devices.begin(), board_layer_devices.end(), std::size_t{0});
}

BoardTrainingShape board_training_shape(const learning::TrainConfig& config,
                                        const instruments::BoardSettings& settings,
                                        std::size_t train_images_per_task) {
  BoardTrainingShape shape;
  const auto placement = parse_placement(config.placement, config.hidden.size() + 1);
  const std::size_t per_weight = devices_per_weight(parse_mapping(config.mapping));
  std::size_t inputs = kInputs;
  for (std::size_t l = 0; l < placement.size(); ++l) {
    const std::size_t outputs = l < config.hidden.size() ? config.hidden[l] : kOutputs;
    if (placement[l] == StoreKind::board) {
      shape.board_layer_devices.push_back(inputs * outputs * per_weight);
    }
    inputs = outputs;
  }
  // The trainer's split: train-limit first, then the validation fraction held out of it.
  const std::size_t limited = config.train_limit > 0
                                  ? std::min(config.train_limit, train_images_per_task)
                                  : train_images_per_task;
  const auto held_out =
      static_cast<std::size_t>(std::llround(config.validation * static_cast<double>(limited)));
  shape.epochs = config.tasks.size() * static_cast<std::uint64_t>(std::max(config.epochs, 0));
  const std::uint64_t per_epoch =
      steps_per_epoch(limited - std::min(held_out, limited), config.batch);
  shape.steps = shape.epochs * per_epoch;
  shape.first_epoch_steps = shape.epochs > 0 ? per_epoch : 0;
  shape.reread_every = static_cast<std::uint64_t>(std::max(config.reread_every, 0));
  shape.pulse_width_ns = (settings.set_pulse_width_ns + settings.reset_pulse_width_ns) / 2;
  return shape;
}

namespace {

// What a pilot's config.json says: its board layers and the training steps of one epoch of
// each task.
struct PilotConfig {
  BoardTrainingShape shape;
  std::map<std::string, std::uint64_t> steps_of_task;
};

PilotConfig read_pilot_config(const fs::path& run_dir) {
  const fs::path config_file = run_dir / learning::kConfigFile;
  if (!fs::exists(config_file)) throw pilot_error(run_dir, "no " + config_file.filename().string());
  const nlohmann::json config = common::read_json_file(config_file);
  PilotConfig pilot;
  try {
    const auto options = learning::TrainConfig::from_json(config.at("options"));
    pilot.shape = board_training_shape(options);
    for (const auto& [task, data] : config.at("datasets").items()) {
      pilot.steps_of_task[task] =
          steps_per_epoch(data.at("train_images").get<std::size_t>(), options.batch);
    }
  } catch (const std::exception& e) {
    throw pilot_error(config_file, std::string("not a run's configuration: ") + e.what());
  }
  if (pilot.shape.board_layer_devices.empty()) throw pilot_error(run_dir, "no layer on a board");
  return pilot;
}

using Epoch = std::pair<std::string, int>;  // task, epoch

// The epochs a journal checkpointed, in order (once each: a resumed run checkpoints an epoch
// again only if it redid it).
std::vector<Epoch> checkpointed_epochs(const std::vector<nlohmann::json>& records) {
  std::vector<Epoch> epochs;
  for (const auto& r : records) {
    if (r.value("type", "") != "checkpoint") continue;
    const Epoch epoch{r.value("task", ""), r.value("epoch", 0)};
    if (std::find(epochs.begin(), epochs.end(), epoch) == epochs.end()) epochs.push_back(epoch);
  }
  return epochs;
}

// The program-and-verify batches of a pilot, summed: the initial programming, and the training
// batches of its first checkpointed epoch (phase 0) and of the others (phase 1).
struct PilotBatches {
  struct Phase {
    double steps = 0, cells = 0, pulses = 0, batches = 0, requests = 0;
  } phases[2];
  double initial_cells = 0, initial_pulses = 0, unformed = 0;

  void add(const nlohmann::json& batch, const std::vector<Epoch>& epochs);
};

void PilotBatches::add(const nlohmann::json& r, const std::vector<Epoch>& epochs) {
  // The driver's chunks for a board of the full payload (as the simulated board advertises).
  static const std::size_t chunk =
      instruments::program_verify_entries_per_request(p::kMaxPayloadBytes);
  const std::string phase = r.value("phase", "");
  const auto& pulses_of = r.at("pulses");
  double pulses = 0;
  for (const auto& n : pulses_of) pulses += n.get<double>();
  const auto cells = static_cast<double>(r.at("cells").size());
  if (phase == "initial") {
    initial_cells += cells;
    initial_pulses += pulses;
    // Unformed: no pulse and not passed (a cell in band already passes without one).
    const auto& passed = r.at("passed");
    for (std::size_t k = 0; k < passed.size() && k < pulses_of.size(); ++k) {
      unformed += pulses_of[k].get<double>() == 0 && passed[k].get<int>() == 0;
    }
    return;
  }
  const auto epoch =
      std::find(epochs.begin(), epochs.end(), Epoch{r.value("task", ""), r.value("epoch", 0)});
  if (phase != "train" || epoch == epochs.end()) return;
  Phase& sum = phases[epoch == epochs.begin() ? 0 : 1];
  sum.cells += cells;
  sum.pulses += pulses;
  ++sum.batches;
  sum.requests += std::ceil(cells / static_cast<double>(chunk));
}

LevelChanges level_changes(const PilotBatches::Phase& phase, const BoardTrainingShape& shape) {
  const double devices = static_cast<double>(shape.board_devices());
  const double layers = static_cast<double>(shape.board_layer_devices.size());
  LevelChanges c;
  c.changed_fraction = phase.cells / (phase.steps * devices);
  c.batches_per_step = phase.batches / (phase.steps * layers);
  c.requests_per_batch = phase.batches > 0 ? phase.requests / phase.batches : 0;
  c.pulses_per_write = phase.cells > 0 ? phase.pulses / phase.cells : 0;
  return c;
}

}  // namespace

LevelChangeModel level_change_model_from_run(const fs::path& run_dir) {
  const PilotConfig pilot = read_pilot_config(run_dir);
  const fs::path journal_file = run_dir / kJournalFile;
  if (!fs::exists(journal_file)) {
    throw pilot_error(run_dir, "no " + journal_file.filename().string());
  }
  const auto records = JournalFile::read(journal_file);
  const std::vector<Epoch> epochs = checkpointed_epochs(records);
  if (epochs.empty()) throw pilot_error(journal_file, "no epoch checkpointed");
  PilotBatches batches;
  for (std::size_t k = 0; k < epochs.size(); ++k) {
    const auto it = pilot.steps_of_task.find(epochs[k].first);
    if (it == pilot.steps_of_task.end()) {
      throw pilot_error(journal_file, "checkpoint of task \"" + epochs[k].first +
                                          "\", which config.json does not train");
    }
    batches.phases[k == 0 ? 0 : 1].steps += static_cast<double>(it->second);
  }
  try {
    for (const auto& r : records) {
      if (r.value("type", "") == "batch") batches.add(r, epochs);
    }
  } catch (const nlohmann::json::exception& e) {
    throw pilot_error(journal_file, std::string("a batch record without its cells, pulses or "
                                                "passed lists: ") +
                                        e.what());
  }
  LevelChangeModel m;
  m.first_epoch = level_changes(batches.phases[0], pilot.shape);
  m.later_epochs =
      epochs.size() > 1 ? level_changes(batches.phases[1], pilot.shape) : m.first_epoch;
  m.initial_pulses_per_write =
      batches.initial_cells > 0 ? batches.initial_pulses / batches.initial_cells : 0;
  m.unformed_fraction = batches.unformed / static_cast<double>(pilot.shape.board_devices());
  m.source = "pilot " + run_dir.string() + ", " + std::to_string(epochs.size()) + " epochs";
  return m;
}

// ---------------------------------------------------------------------------------------------

double BoardWork::sim_clock_ns(const devices::TimingModel& timing) const {
  return board_ns + array_bytes * 10 * 1e9 / timing.baud;
}

BoardWork& BoardWork::operator+=(const BoardWork& o) {
  pulses += o.pulses;
  reads += o.reads;
  requests += o.requests;
  array_requests += o.array_requests;
  bytes += o.bytes;
  array_bytes += o.array_bytes;
  board_ns += o.board_ns;
  return *this;
}

double BoardWorkCounter::Chunked::requests(double cells) const {
  if (cells <= 0) return 0;
  return std::ceil(cells / static_cast<double>(chunk));
}

BoardWorkCounter::BoardWorkCounter(const devices::TimingModel& timing, double pulse_width_ns,
                                   std::size_t max_payload_bytes)
    : timing_(timing), pulse_width_ns_(pulse_width_ns) {
  const auto chunked = [](std::size_t chunk, std::pair<double, double> line) {
    return Chunked{chunk, line.first, line.second};
  };
  program_verify_ = chunked(instruments::program_verify_entries_per_request(max_payload_bytes),
                            bytes_line(program_verify_bytes));
  refused_program_verify_ =
      chunked(program_verify_.chunk, bytes_line(refused_program_verify_bytes));
  read_ = chunked(instruments::read_cells_per_request(max_payload_bytes), bytes_line(read_bytes));
  counters_ =
      chunked(instruments::counters_per_request(max_payload_bytes), bytes_line(counters_bytes));
}

void BoardWorkCounter::add(double calls, const Chunked& kind, double cells, bool on_array,
                           double board_ns, double requests_per_call) {
  const double per_call = requests_per_call > 0 ? requests_per_call : kind.requests(cells);
  const double requests = calls * per_call;
  const double bytes = calls * (per_call * kind.fixed_bytes + cells * kind.bytes_per_entry);
  work_.requests += requests;
  work_.bytes += bytes;
  if (on_array) {
    work_.array_requests += requests;
    work_.array_bytes += bytes;
    work_.board_ns += requests * static_cast<double>(timing_.command_overhead_ns);
  }
  work_.board_ns += calls * board_ns;
}

void BoardWorkCounter::program_and_verify(double calls, double cells, double pulses_per_cell,
                                          double requests_per_call) {
  if (calls <= 0 || cells <= 0) return;
  const double pulses = cells * pulses_per_cell, reads = cells * (pulses_per_cell + 1);
  work_.pulses += calls * pulses;
  work_.reads += calls * reads;
  const double pulse_ns =
      static_cast<double>(timing_.pulse_ns(static_cast<std::int64_t>(pulse_width_ns_)));
  add(calls, program_verify_, cells, true,
      pulses * pulse_ns + reads * static_cast<double>(timing_.read_ns()), requests_per_call);
}

void BoardWorkCounter::read(double calls, double cells) {
  if (calls <= 0 || cells <= 0) return;
  work_.reads += calls * cells;
  add(calls, read_, cells, true, cells * static_cast<double>(timing_.read_ns()));
}

void BoardWorkCounter::read_counters_array(double calls, std::size_t cells) {
  if (calls <= 0 || cells == 0) return;
  add(calls, counters_, static_cast<double>(cells), false, 0);
}

void BoardWorkCounter::refused_program_verify(double refusals, double chunk_cells) {
  if (refusals <= 0) return;
  // The simulated board's clock does not advance for a refused request: link time only.
  add(refusals, refused_program_verify_,
      std::min(chunk_cells, static_cast<double>(refused_program_verify_.chunk)), false, 0);
}

void BoardWorkCounter::session(std::size_t levels) {
  p::IdentifyResponse identity;
  identity.model = "metaplast-simboard";
  identity.serial = "SIM-0001-s1";
  identity.firmware_version = "sim-1.0";
  identity.tia_ranges.resize(4);
  identity.levels.resize(levels);
  p::LevelTable table;
  table.levels.resize(levels);
  const double bytes = frame_bytes(p::IdentifyRequest{}, identity) +
                       frame_bytes(p::SetLevelsRequest{}, table) +
                       frame_bytes(p::ConfigureRequest{}, p::EmptyBody{}) +
                       frame_bytes(p::WatchdogArmRequest{}, p::EmptyBody{}) +
                       frame_bytes(p::SafeStateRequest{}, p::EmptyBody{});
  work_.requests += 5;
  work_.bytes += bytes;
}

BoardWork estimate_board_training(const BoardTrainingShape& shape, const LevelChangeModel& model,
                                  const devices::TimingModel& timing) {
  BoardWorkCounter count(timing, shape.pulse_width_ns);
  if (shape.board_layer_devices.empty()) return count.work();
  const auto first_steps = static_cast<double>(std::min(shape.first_epoch_steps, shape.steps));
  const double later_steps = static_cast<double>(shape.steps) - first_steps;
  for (const std::size_t devices : shape.board_layer_devices) {
    const auto n = static_cast<double>(devices);
    count.program_and_verify(1, n, model.initial_pulses_per_write);
    count.refused_program_verify(model.unformed_fraction * n, n);
    for (const auto& [steps, changes] :
         {std::pair{first_steps, model.first_epoch}, std::pair{later_steps, model.later_epochs}}) {
      if (changes.batches_per_step <= 0) continue;
      count.program_and_verify(steps * changes.batches_per_step,
                               changes.changed_fraction * n / changes.batches_per_step,
                               changes.pulses_per_write, changes.requests_per_batch);
    }
    if (shape.reread_every > 0) {
      count.read(static_cast<double>(shape.steps / shape.reread_every), n);
    }
  }
  count.read(static_cast<double>(shape.epochs), static_cast<double>(shape.board_devices()));
  count.read_counters_array(2, shape.array_cells);
  count.session();
  return count.work();
}

}  // namespace metaplast::hil
