#include "app/learning/trainer.hpp"

#include <cblas.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

#include "app/hil/endurance_report.hpp"
#include "app/hil/journal.hpp"
#include "app/hil/memory_report.hpp"
#include "app/hil/placement.hpp"
#include "app/hil/snapshot_h5.hpp"
#include "app/learning/checkpoint.hpp"
#include "app/learning/dataset.hpp"
#include "app/util/sha256.hpp"
#include "sim/atomic_file.hpp"

namespace metaplast::learning {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kEvalBatchRunning = 1000;
constexpr const char* kDataFiles[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                      "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

struct TaskSplit {
  std::string name;
  Dataset train, validation, test;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  }
  return buf;
}

void write_text_file(const fs::path& file, const std::string& text) {
  sim::write_file_atomically(file, text);
}

// metrics.csv grows by appends through the stream's buffer: a full disk shows at the flush.
void flush_or_throw(std::ofstream& out, const fs::path& file) {
  out.flush();
  if (!out) {
    throw std::runtime_error("cannot write " + file.string() + ": " + std::strerror(errno) +
                             "; free some space on that disk and run again (with --resume once the "
                             "run has a checkpoint.bin)");
  }
}

// A run that stopped before its first checkpoint (board unreachable, killed, ...) has nothing to
// resume: its files are set aside (journal kept, docs/run-records.md) and the run starts over in
// the same folder, whether asked with --resume or with the same --out.
bool stopped_before_first_checkpoint(const fs::path& out_dir) {
  return fs::is_directory(out_dir) && !fs::exists(out_dir / kCheckpointFile) &&
         !fs::exists(out_dir / kSummaryFile) &&
         (fs::exists(out_dir / kConfigFile) || fs::exists(out_dir / hil::kJournalFile));
}

void set_aside_stopped_run(const fs::path& out_dir) {
  spdlog::warn("{}: the run there stopped before its first checkpoint; starting it over",
               out_dir.string());
  if (fs::exists(out_dir / hil::kJournalFile)) {
    fs::path kept;
    for (int n = 1;; ++n) {
      kept = out_dir / ("journal.stopped-" + std::to_string(n) + ".jsonl");
      if (!fs::exists(kept)) break;
    }
    fs::rename(out_dir / hil::kJournalFile, kept);
  }
  for (const char* file : {kConfigFile, kMetricsFile, "conductances.csv", "snapshots"}) {
    fs::remove_all(out_dir / file);
  }
}

// Returns whether the run continues from a checkpoint (false: it starts from the beginning).
bool check_out_dir(const fs::path& out_dir, bool resume) {
  if (resume) {
    if (fs::exists(out_dir / kSummaryFile)) {
      throw std::invalid_argument("--resume " + out_dir.string() +
                                  ": this run already finished (summary.json exists); nothing to "
                                  "resume");
    }
    if (!stopped_before_first_checkpoint(out_dir)) return true;
    set_aside_stopped_run(out_dir);
    return false;
  }
  if (!fs::exists(out_dir)) {
    fs::create_directories(out_dir);
    return false;
  }
  if (!fs::is_directory(out_dir)) {
    throw std::invalid_argument("--out " + out_dir.string() + " exists and is not a directory");
  }
  if (fs::exists(out_dir / kSummaryFile)) {
    throw std::invalid_argument("--out " + out_dir.string() +
                                " already holds a finished run (summary.json); choose another "
                                "--out directory");
  }
  if (stopped_before_first_checkpoint(out_dir)) {
    set_aside_stopped_run(out_dir);
    return false;
  }
  if (fs::exists(out_dir / kConfigFile) || fs::exists(out_dir / kCheckpointFile)) {
    throw std::invalid_argument("--out " + out_dir.string() +
                                " holds an unfinished run; continue it with --resume " +
                                out_dir.string() + ", or choose another --out directory");
  }
  if (!fs::is_empty(out_dir)) {
    throw std::invalid_argument("--out " + out_dir.string() +
                                " is not empty; choose a new or empty directory");
  }
  return false;
}

std::vector<TaskSplit> load_tasks(const TrainConfig& config, nlohmann::json& datasets_json) {
  std::vector<TaskSplit> tasks;
  for (const std::string& name : config.tasks) {
    TaskData data = load_task(config.data_dir, name);
    TaskSplit split;
    split.name = name;
    Dataset train = std::move(data.train);
    const std::size_t available = train.size();
    const std::size_t limited =
        config.train_limit > 0 ? std::min(config.train_limit, available) : available;
    const auto held_out =
        static_cast<std::size_t>(std::llround(config.validation * static_cast<double>(limited)));
    if (config.validation > 0.0 && (held_out == 0 || held_out + 2 > limited)) {
      throw std::invalid_argument("--validation " + std::to_string(config.validation) + " of " +
                                  std::to_string(limited) + " " + name +
                                  " training images leaves no usable validation or training set");
    }
    if (limited - held_out < config.batch) {
      throw std::invalid_argument("--batch " + std::to_string(config.batch) +
                                  " is larger than the " + std::to_string(limited - held_out) +
                                  " " + name + " training images");
    }
    split.validation = train.slice(limited - held_out, limited);
    split.train = train.slice(0, limited - held_out);
    split.test = std::move(data.test);

    nlohmann::json files;
    for (const char* file : kDataFiles) {
      files[file] = util::sha256_file_hex(config.data_dir / name / file);
    }
    datasets_json[name] = {
        {"sha256", files},
        {"train_images", split.train.size()},
        {"train_range", {0, limited - held_out}},
        {"validation_images", split.validation.size()},
        {"validation_range", {limited - held_out, limited}},
        {"test_images", split.test.size()},
        {"available_train_images", available},
    };
    tasks.push_back(std::move(split));
  }
  return tasks;
}

// Fisher-Yates with the run's generator (std::shuffle's algorithm is not specified).
void shuffle(std::vector<std::size_t>& order, std::mt19937_64& rng) {
  for (std::size_t i = order.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap(order[i - 1], order[j]);
  }
}

class Progress {
 public:
  explicit Progress(double total_samples) : total_(total_samples), start_(Clock::now()) {
    enabled_ = ::isatty(STDERR_FILENO) != 0;
  }
  void update(const std::string& label, std::size_t done, std::size_t of, double loss,
              double accuracy, std::uint64_t session_samples, double samples_left) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    const double elapsed = seconds_since(start_);
    const double rate = elapsed > 0 ? static_cast<double>(session_samples) / elapsed : 0.0;
    std::fprintf(stderr, "\r\033[K%s %zu/%zu  loss %.3f  acc %.1f%%  %.0f samples/s  ETA %s",
                 label.c_str(), done, of, loss, 100.0 * accuracy, rate,
                 rate > 0 ? format_duration(samples_left / rate).c_str() : "?");
    std::fflush(stderr);
  }
  void clear() {
    if (enabled_) std::fprintf(stderr, "\r\033[K");
  }
  double total() const { return total_; }

 private:
  bool enabled_ = false;
  double total_;
  Clock::time_point start_, last_{};
};

// The cells holding weights of the board layers, and the layer of each.
struct PlacedCells {
  std::vector<std::uint32_t> cells;
  std::vector<std::int16_t> layer;
};
PlacedCells placed_board_cells(hil::NetworkStores& stores) {
  PlacedCells placed;
  for (std::size_t l = 0; l < stores.layers(); ++l) {
    const auto* board = dynamic_cast<const hil::BoardStore*>(&stores.layer(l));
    if (board == nullptr) continue;
    for (auto cell : board->placement()) {
      placed.cells.push_back(cell);
      placed.layer.push_back(static_cast<std::int16_t>(l));
    }
  }
  return placed;
}

// The epoch's HDF5 snapshot of the board layers (reads every placed cell once).
void write_epoch_snapshot(const fs::path& out_dir, hil::NetworkStores& stores,
                          hil::BoardRunJournal& journal, const std::string& chip,
                          const std::string& task, int epoch, int epoch_index) {
  hil::BoardCells& cells = *stores.board_cells();
  const auto& info = cells.board().info();
  const std::size_t n = info.cells();
  hil::ArraySnapshot snapshot;
  snapshot.rows = info.rows;
  snapshot.cols = info.cols;
  snapshot.conductance_us.assign(n, std::nanf(""));
  snapshot.target_conductance_us.assign(n, std::nanf(""));
  snapshot.target_level.assign(n, -1);
  snapshot.layer.assign(n, -1);
  snapshot.programming_count = cells.writes_per_cell();
  snapshot.verify = journal.take_verify_rows();
  const PlacedCells placed = placed_board_cells(stores);
  std::vector<instruments::Cell> to_read;
  for (auto index : placed.cells) to_read.push_back(cells.cell(index));
  const auto readings =
      to_read.empty() ? std::vector<instruments::CellReading>{} : cells.read(to_read);
  for (std::size_t k = 0; k < placed.cells.size(); ++k) {
    const std::uint32_t index = placed.cells[k];
    snapshot.conductance_us[index] = static_cast<float>(readings[k].conductance_us);
    snapshot.layer[index] = placed.layer[k];
    const std::int16_t level = journal.cell_levels()[index];
    snapshot.target_level[index] = level;
    if (level >= 0) {
      snapshot.target_conductance_us[index] = static_cast<float>(
          cells.board().level_conductance_us(static_cast<instruments::Level>(level)));
    }
  }
  snapshot.run_id = journal.run_id();
  snapshot.chip_id = chip;
  snapshot.board_serial = info.serial;
  snapshot.board_boot_id = info.boot_id;
  snapshot.task = task;
  snapshot.epoch = epoch;
  snapshot.epoch_index = epoch_index;
  snapshot.band_us = hil::VerifyOptions{}.band_us;
  // The latest map also as CSV, for `metaplast report`'s conductance map.
  {
    const fs::path csv_path = out_dir / "conductances.csv";
    std::ostringstream csv;
    csv << "row,col,conductance_us\n";
    for (std::size_t index = 0; index < n; ++index) {
      if (std::isnan(snapshot.conductance_us[index])) continue;
      csv << index / info.cols << ',' << index % info.cols << ',' << snapshot.conductance_us[index]
          << '\n';
    }
    sim::write_file_atomically(csv_path, csv.str());
  }
  const fs::path file = hil::snapshot_path(out_dir, epoch_index);
  hil::write_snapshot_h5(file, snapshot);
  journal.snapshot_written(file, task, epoch);
}

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

nlohmann::json run_training(const TrainConfig& config, const fs::path& out_dir, bool resume,
                            const RunControl& control) {
  config.validate();
  resume = check_out_dir(out_dir, resume);

  nlohmann::json datasets_json = nlohmann::json::object();
  std::vector<TaskSplit> tasks = load_tasks(config, datasets_json);
  // Levels from the device calibration (non-uniform Q_i) as soon as devices are involved.
  const bool calibrated = config.calibrated_levels();
  const sim::Calibration calibration = hil::run_calibration(config.calibration);
  const hil::Mapping mapping = hil::parse_mapping(config.mapping);
  const Quantizer quantizer =
      calibrated ? Quantizer(hil::ConductanceMapping(calibration, mapping).levels())
                 : Quantizer::uniform(config.levels, -1.0f, 1.0f);

  NetworkConfig net_config;
  net_config.inputs = tasks.front().train.pixels_per_image();
  net_config.hidden = config.hidden;
  net_config.outputs = 10;
  net_config.init = config.init;
  net_config.init_mode = config.init_mode;
  // Every split is gathered into rows of net_config.inputs floats: one size for all.
  for (const TaskSplit& task : tasks) {
    for (const Dataset* split : {&task.train, &task.validation, &task.test}) {
      if (split->rows == tasks.front().train.rows && split->cols == tasks.front().train.cols) {
        continue;
      }
      throw std::invalid_argument(
          "--tasks: dataset file " + split->images_file.string() + " has images of " +
          std::to_string(split->rows) + " x " + std::to_string(split->cols) +
          " pixels, the network's input (" + tasks.front().train.images_file.string() + ") " +
          std::to_string(tasks.front().train.rows) + " x " +
          std::to_string(tasks.front().train.cols) + "; every task must have the same image size");
    }
  }
  OptimizerConfig opt_config;
  opt_config.learning_rate = config.learning_rate;
  opt_config.mstar = config.mstar;
  opt_config.rule = config.rule;

  nlohmann::json options = config.to_json();
  std::vector<std::size_t> sizes{net_config.inputs};
  sizes.insert(sizes.end(), config.hidden.begin(), config.hidden.end());
  sizes.push_back(net_config.outputs);
  nlohmann::json run_config = {
      {"options", options},
      {"network",
       {{"layers", sizes},
        {"activation", "sign (straight-through where |x| <= 1)"},
        {"bias", false},
        {"input", "raw pixels / 255"}}},
      {"levels", std::vector<float>(quantizer.levels().begin(), quantizer.levels().end())},
      {"batchnorm",
       {{"protocol", std::string(to_string(config.batchnorm))},
        {"test_statistics", std::string(to_string(config.batchnorm_stats))},
        {"epsilon", net_config.batchnorm_epsilon},
        {"momentum", net_config.batchnorm_momentum}}},
      {"optimizer",
       {{"name", "metaplastic Adam"},
        {"beta1", opt_config.beta1},
        {"beta2", opt_config.beta2},
        {"epsilon", opt_config.epsilon},
        {"weight_decay", opt_config.weight_decay},
        {"reset_per_task", true}}},
      {"datasets", datasets_json},
      {"checkpoint_format", kCheckpointFormatVersion},
      {"metaplast_version", METAPLAST_VERSION},
  };
  // What a checkpoint must match: every option but the data path, and the data's content.
  nlohmann::json hashed = options;
  hashed.erase("data");
  // The board may be reached at another address after a restart; the registry may move.
  hashed.erase("device");
  hashed.erase("chips-dir");
  hashed.erase("station");
  // Runs made before hardware in the loop hash as they did then.
  if (!config.calibrated_levels() && config.reread_every == 0 && config.chip.empty()) {
    for (const char* key : {"placement", "calibration", "reread-every", "chip"}) hashed.erase(key);
  }
  const std::uint64_t config_hash =
      fnv1a64(hashed.dump() + datasets_json.dump() + run_config["levels"].dump());

  // Training batches, and evaluation batches (see `evaluate`): up to kEvalBatchRunning rows when
  // the run tests with running statistics.
  const std::size_t max_batch = config.batchnorm_stats == BatchNormStats::batch
                                    ? config.batch
                                    : std::max(config.batch, kEvalBatchRunning);
  Network network(net_config, quantizer, max_batch);
  MetaplasticAdam optimizer(opt_config, quantizer, config.threads);
  struct Slots {
    std::size_t weights, gamma, beta;
  };
  std::vector<Slots> slots;
  for (const DenseLayer& layer : network.layers()) {
    slots.push_back({optimizer.add_quantized_tensor(layer.hidden.size()),
                     optimizer.add_plain_tensor(layer.outputs),
                     optimizer.add_plain_tensor(layer.outputs)});
  }
  openblas_set_num_threads(config.threads);

  std::vector<std::size_t> layer_weights;
  for (const DenseLayer& layer : network.layers()) layer_weights.push_back(layer.hidden.size());
  hil::StoreOptions store_options;
  store_options.placement = hil::parse_placement(config.placement, layer_weights.size());
  store_options.seed = config.seed;
  store_options.mapping = mapping;
  store_options.reread_every = config.reread_every;
  store_options.device = config.device;
  store_options.chips_dir = config.chips_dir;
  store_options.chip = config.chip;
  store_options.station = config.station;
  store_options.record = config.record;
  store_options.calibration_from_file = !config.calibration.empty();
  hil::NetworkStores stores(store_options, layer_weights, quantizer, calibration);
  run_config["store"] = stores.store_json();
  // Board layers: every program batch journaled (journal.jsonl), an HDF5 snapshot per epoch.
  std::unique_ptr<hil::BoardRunJournal> journal;
  std::string chip_id;
  if (stores.board_cells() != nullptr) {
    chip_id = run_config["store"].value("chip", "");
    journal = std::make_unique<hil::BoardRunJournal>(out_dir, *stores.board_cells(), chip_id);
  }
  // The optimizer writes W_Q here; the stores program what changed and set layer.quantized to
  // the effective weights the forward pass uses.
  std::vector<std::vector<float>> new_quantized;
  std::vector<std::span<float>> effective;
  for (DenseLayer& layer : network.layers()) {
    new_quantized.emplace_back(layer.quantized.size());
    effective.emplace_back(layer.quantized);
  }

  std::mt19937_64 rng(config.seed);
  TrainingState state;
  const fs::path metrics_path = out_dir / kMetricsFile;
  const fs::path checkpoint_path = out_dir / kCheckpointFile;
  if (resume) {
    state = load_checkpoint(checkpoint_path, config_hash);
    check_checkpoint_fits(state, checkpoint_path, network, tasks.size(),
                          static_cast<std::size_t>(config.epochs));
    auto& layers = network.layers();
    if (state.hidden_weights.size() != layers.size() ||
        state.saved_batchnorm.size() != tasks.size()) {
      throw std::runtime_error("checkpoint " + checkpoint_path.string() +
                               " does not match the network of config.json");
    }
    for (std::size_t l = 0; l < layers.size(); ++l) {
      if (state.hidden_weights[l].size() != layers[l].hidden.size()) {
        throw std::runtime_error("checkpoint " + checkpoint_path.string() + ": layer " +
                                 std::to_string(l) + " has the wrong size");
      }
      layers[l].hidden = state.hidden_weights[l];
    }
    network.requantize();
    if (journal) journal->before_resume_load();
    if (state.store_state.empty()) {
      for (std::size_t l = 0; l < layers.size(); ++l) {
        stores.program_initial(l, layers[l].quantized, effective[l]);
      }
    } else {
      stores.load(state.store_state, effective);
    }
    if (journal) {
      // In band as the board store judges it on resume: the calibrated level medians.
      const hil::ConductanceMapping device_mapping(calibration);
      std::vector<double> level_targets_us;
      for (std::size_t i = 0; i <= calibration.hcs_levels.size(); ++i) {
        level_targets_us.push_back(device_mapping.target_us(i));
      }
      const nlohmann::json record = journal->reconcile_resume(
          state.task_index, state.epochs_done, placed_board_cells(stores).cells, level_targets_us,
          hil::VerifyOptions{}.band_us);
      spdlog::info("resume on board boot {}: {} of {} placed cells in band, {} reprogrammed",
                   journal->boot_id(), record["placed_cells_in_band"].get<std::size_t>(),
                   record["placed_cells"].get<std::size_t>(),
                   record["reprogrammed_cells"].get<std::size_t>());
    }
    network.set_batchnorm_state(state.live_batchnorm);
    optimizer.restore(state.optimizer_steps, state.optimizer_moments);
    std::istringstream rng_text(state.rng_state);
    rng_text >> rng;
    if (!rng_text) throw std::runtime_error("checkpoint: unreadable random generator state");
  } else {
    network.initialise(rng);
    if (journal) {
      journal->start(out_dir.filename().string() + "-" + hil::utc_now_iso8601());
    }
    for (std::size_t l = 0; l < network.layers().size(); ++l) {
      DenseLayer& layer = network.layers()[l];
      new_quantized[l] = layer.quantized;
      stores.program_initial(l, new_quantized[l], effective[l]);
    }
    state.saved_batchnorm.resize(tasks.size());
    write_text_file(out_dir / kConfigFile, run_config.dump(2) + "\n");
  }
  // metrics.csv is rewritten from the checkpoint, dropping rows of an epoch that did not finish.
  std::ofstream metrics(metrics_path, std::ios::trunc);
  metrics << "task_trained,epoch,task_evaluated,split,accuracy,loss\n";
  auto write_row = [&metrics](const MetricRow& row) {
    char line[256];
    std::snprintf(line, sizeof line, "%s,%d,%s,%s,%.6f,%.6f\n", row.task_trained.c_str(), row.epoch,
                  row.task_evaluated.c_str(), row.split.c_str(), row.accuracy, row.loss);
    metrics << line;
  };
  for (const MetricRow& row : state.metrics) write_row(row);
  flush_or_throw(metrics, metrics_path);

  std::vector<float> inputs(max_batch * net_config.inputs);
  std::vector<std::uint8_t> labels(max_batch);
  std::vector<std::size_t> order, eval_indices;

  auto evaluate = [&](const Dataset& data, const std::vector<BatchNormState>& batchnorm,
                      BatchNormStats stats) {
    double loss_sum = 0.0;
    std::size_t correct = 0;
    eval_indices.resize(data.size());
    std::iota(eval_indices.begin(), eval_indices.end(), std::size_t{0});
    // Batch statistics depend on the batch: the training batch size, as the BNN code tests.
    // Running statistics do not: as large a batch as the buffers allow.
    const std::size_t step = stats == BatchNormStats::batch ? config.batch : max_batch;
    for (std::size_t start = 0; start < data.size(); start += step) {
      const std::size_t n = std::min(step, data.size() - start);
      data.gather({eval_indices.data() + start, n}, inputs.data());
      const BatchResult r =
          network.evaluate_batch(inputs.data(), {data.labels.data() + start, n}, stats, batchnorm);
      loss_sum += r.loss_sum;
      correct += r.correct;
    }
    const double count = static_cast<double>(std::max<std::size_t>(data.size(), 1));
    return std::pair<double, double>{static_cast<double>(correct) / count, loss_sum / count};
  };

  double planned_samples = 0.0;
  for (const TaskSplit& task : tasks) {
    planned_samples += static_cast<double>(task.train.size()) * config.epochs;
  }
  Progress progress(planned_samples);
  std::uint64_t session_samples = 0;
  spdlog::info("training {} task(s), {} epoch(s) each, m* = {} ({} rule), {} levels{}, into {}",
               tasks.size(), config.epochs, config.mstar, to_string(config.rule),
               quantizer.levels().size(),
               config.calibrated_levels() ? " (from the calibration)" : " (uniform)",
               out_dir.string());

  for (std::size_t t = state.task_index; t < tasks.size(); ++t) {
    const TaskSplit& task = tasks[t];
    const std::size_t first_epoch = t == state.task_index ? state.epochs_done : 0;
    for (std::size_t e = first_epoch; e < static_cast<std::size_t>(config.epochs); ++e) {
      if (e == 0) optimizer.reset();  // a fresh optimizer for every task
      optimizer.set_learning_rate(config.learning_rate *
                                  std::pow(config.lr_decay, static_cast<float>(e)));
      if (journal) {
        journal->context().phase = "train";
        journal->context().task = task.name;
        journal->context().epoch = static_cast<int>(e + 1);
      }
      order.resize(task.train.size());
      std::iota(order.begin(), order.end(), std::size_t{0});
      shuffle(order, rng);

      const std::string label =
          task.name + " epoch " + std::to_string(e + 1) + "/" + std::to_string(config.epochs);
      double loss_sum = 0.0;
      std::size_t correct = 0, seen = 0;
      const auto epoch_start = Clock::now();
      for (std::size_t start = 0; start + 2 <= order.size(); start += config.batch) {
        if (control.abort_now != nullptr && control.abort_now->load()) {
          progress.clear();
          throw RunAborted("run in " + out_dir.string() + " aborted during " + label +
                           "; the checkpoint of the previous epoch is intact (--resume " +
                           out_dir.string() + " continues)");
        }
        const std::size_t n = std::min(config.batch, order.size() - start);
        task.train.gather({order.data() + start, n}, inputs.data());
        for (std::size_t k = 0; k < n; ++k) labels[k] = task.train.labels[order[start + k]];
        const BatchResult r = network.train_batch(inputs.data(), {labels.data(), n});
        optimizer.begin_step();
        if (journal) ++journal->context().step;
        auto& layers = network.layers();
        for (std::size_t l = 0; l < layers.size(); ++l) {
          DenseLayer& layer = layers[l];
          optimizer.update_quantized(slots[l].weights, layer.hidden, new_quantized[l], layer.grad);
          stores.after_step(l, new_quantized[l], effective[l]);
          optimizer.update_plain(slots[l].gamma, layer.batchnorm.gamma, layer.grad_gamma);
          optimizer.update_plain(slots[l].beta, layer.batchnorm.beta, layer.grad_beta);
        }
        stores.end_step(effective);
        loss_sum += r.loss_sum;
        correct += r.correct;
        seen += n;
        session_samples += n;
        progress.update(label, seen, order.size(), loss_sum / static_cast<double>(seen),
                        static_cast<double>(correct) / static_cast<double>(seen), session_samples,
                        planned_samples - static_cast<double>(state.samples_trained + seen));
      }
      state.train_seconds += seconds_since(epoch_start);
      state.samples_trained += seen;

      const bool task_done = e + 1 == static_cast<std::size_t>(config.epochs);
      const std::vector<BatchNormState> live = network.batchnorm_state();
      if (task_done) state.saved_batchnorm[t] = live;
      progress.clear();
      std::string report;
      EpochReport epoch_report;
      epoch_report.task = task.name;
      epoch_report.task_index = t;
      epoch_report.epoch = static_cast<int>(e + 1);
      epoch_report.epochs = config.epochs;
      for (std::size_t k = 0; k < tasks.size(); ++k) {
        const bool own_state = config.batchnorm == BatchNormProtocol::per_task && k != t &&
                               state.saved_batchnorm[k].has_value();
        const std::vector<BatchNormState>& batchnorm = own_state ? *state.saved_batchnorm[k] : live;
        for (const char* split : {"test", "validation"}) {
          const Dataset& data =
              std::string_view(split) == "test" ? tasks[k].test : tasks[k].validation;
          if (data.size() == 0) continue;
          const auto [accuracy, loss] = evaluate(data, batchnorm, config.batchnorm_stats);
          MetricRow row{task.name, static_cast<int>(e + 1), tasks[k].name, split, accuracy, loss};
          write_row(row);
          state.metrics.push_back(row);
          epoch_report.evaluations.push_back({tasks[k].name, split, accuracy, loss});
          char part[96];
          std::snprintf(part, sizeof part, "  %s %s %.2f%%", tasks[k].name.c_str(), split,
                        100.0 * accuracy);
          report += part;
        }
      }
      flush_or_throw(metrics, metrics_path);

      state.task_index = task_done ? t + 1 : t;
      state.epochs_done = task_done ? 0 : e + 1;
      std::ostringstream rng_text;
      rng_text << rng;
      state.rng_state = rng_text.str();
      state.hidden_weights.clear();
      for (const DenseLayer& layer : network.layers()) state.hidden_weights.push_back(layer.hidden);
      state.optimizer_steps = optimizer.step_count();
      state.optimizer_moments = optimizer.moments();
      state.live_batchnorm = live;
      epoch_report.epoch_writes = stores.end_epoch(task.name, static_cast<int>(e + 1));
      epoch_report.total_writes = stores.total_writes();
      if (journal) {
        // Before the checkpoint, so the snapshot's reads are in its counts and a crash in
        // between rewrites the same snapshot.
        write_epoch_snapshot(out_dir, stores, *journal, chip_id, task.name, static_cast<int>(e + 1),
                             static_cast<int>(t * static_cast<std::size_t>(config.epochs) + e + 1));
      }
      state.store_state = stores.save();
      save_checkpoint(checkpoint_path, config_hash, state);
      if (journal) {
        journal->checkpoint(state.task_index, state.epochs_done, task.name,
                            static_cast<int>(e + 1));
      }
      spdlog::info("{} done: train loss {:.4f} acc {:.2f}%;{}", label,
                   loss_sum / static_cast<double>(std::max<std::size_t>(seen, 1)),
                   100.0 * static_cast<double>(correct) /
                       static_cast<double>(std::max<std::size_t>(seen, 1)),
                   report);
      if (control.on_epoch_end) {
        const double seen_count = static_cast<double>(std::max<std::size_t>(seen, 1));
        epoch_report.train_accuracy = static_cast<double>(correct) / seen_count;
        epoch_report.train_loss = loss_sum / seen_count;
        epoch_report.train_seconds = state.train_seconds;
        control.on_epoch_end(epoch_report);
      }
      const bool more = state.task_index < tasks.size();
      if (more && control.stop_after_epoch != nullptr && control.stop_after_epoch->load()) {
        spdlog::info("stopped after {}; continue with --resume {}", label, out_dir.string());
        nlohmann::json stopped;
        stopped["status"] = "stopped";
        stopped["next"] = {{"task", tasks[state.task_index].name},
                           {"epoch", state.epochs_done + 1}};
        stopped["config"] = run_config;
        stopped["train_seconds"] = state.train_seconds;
        stopped["samples_trained"] = state.samples_trained;
        return stopped;
      }
    }
  }

  nlohmann::json summary;
  summary["status"] = "finished";
  nlohmann::json after_task = nlohmann::json::object();
  nlohmann::json after_task_validation = nlohmann::json::object();
  for (const MetricRow& row : state.metrics) {
    if (row.epoch != config.epochs) continue;
    auto& target = row.split == "test" ? after_task : after_task_validation;
    target[row.task_trained][row.task_evaluated] = row.accuracy;
  }
  const std::string& last = tasks.back().name;
  summary["after_task"] = after_task;
  summary["final"] = after_task[last];
  if (config.validation > 0.0) {
    summary["after_task_validation"] = after_task_validation;
    summary["final_validation"] = after_task_validation[last];
  }
  {
    // The test sets once more with the other test-time BatchNorm statistics (the BNN code changed
    // from running to batch statistics in 2023): one run answers for both protocols.
    const BatchNormStats other = config.batchnorm_stats == BatchNormStats::running
                                     ? BatchNormStats::batch
                                     : BatchNormStats::running;
    // The validation sets too, so the choice between the two can be made on validation.
    nlohmann::json other_final = {{"bn-stats", std::string(to_string(other))}};
    nlohmann::json other_validation = other_final;
    const std::vector<BatchNormState> live = network.batchnorm_state();
    for (std::size_t k = 0; k < tasks.size(); ++k) {
      const bool own_state = config.batchnorm == BatchNormProtocol::per_task &&
                             k + 1 != tasks.size() && state.saved_batchnorm[k].has_value();
      const std::vector<BatchNormState>& bn = own_state ? *state.saved_batchnorm[k] : live;
      other_final[tasks[k].name] = evaluate(tasks[k].test, bn, other).first;
      if (config.validation > 0.0) {
        other_validation[tasks[k].name] = evaluate(tasks[k].validation, bn, other).first;
      }
    }
    summary["final_other_bn_stats"] = other_final;
    if (config.validation > 0.0) summary["final_validation_other_bn_stats"] = other_validation;
  }
  summary["config"] = run_config;
  summary["train_seconds"] = state.train_seconds;
  summary["samples_trained"] = state.samples_trained;
  summary["samples_per_second"] =
      state.train_seconds > 0 ? static_cast<double>(state.samples_trained) / state.train_seconds
                              : 0.0;
  summary["peak_rss_mb"] = static_cast<double>(peak_rss_kb()) / 1024.0;
  summary["writes"] = stores.writes_json();
  if (journal) {
    // Pulses of epochs lost in a crash (from the board's counters) count as writes too.
    const std::uint64_t recovered = journal->recovered_writes();
    auto& writes = summary["writes"];
    writes["recovered_after_crash"] = recovered;
    writes["total"] = writes["total"].get<std::uint64_t>() + recovered;
    std::uint64_t board_layer_writes = recovered;
    for (const auto& layer : writes["per_layer"]) {
      if (layer["store"] == "board") board_layer_writes += layer["writes"].get<std::uint64_t>();
    }
    const auto counters_end = journal->finish();
    // Reboots while reading those counters too.
    writes["reboots_reconciled"] = stores.board_cells()->reboots_reconciled();
    const auto& counters_start = journal->counters_start();
    std::uint64_t increments = 0, cell_writes = 0;
    const auto& per_cell = stores.board_cells()->writes_per_cell();
    std::ofstream csv(out_dir / "cell_writes.csv", std::ios::trunc);
    csv << "row,col,writes\n";
    const std::uint16_t cols = stores.board_cells()->board().info().cols;
    for (std::size_t c = 0; c < per_cell.size(); ++c) {
      if (c < counters_start.size()) increments += counters_end[c] - counters_start[c];
      cell_writes += per_cell[c];
      if (per_cell[c] > 0) csv << c / cols << ',' << c % cols << ',' << per_cell[c] << '\n';
    }
    writes["board"] = {{"layer_writes", board_layer_writes},
                       {"cell_writes", cell_writes},
                       // Unknown for a run begun before journals (no start counters).
                       {"counter_increments", counters_start.empty() ? nlohmann::json(nullptr)
                                                                     : nlohmann::json(increments)},
                       {"unit",
                        "SET + RESET pulses; counter_increments: the board's own "
                        "counters, end minus start of the run, every cell"}};
  }
  summary["store"] = stores.store_json();
  summary["endurance"] = hil::write_endurance_report(out_dir, stores.device_writes_by_kind());
  summary["memory"] = hil::write_memory_report(out_dir, sizes, stores.analog_devices());
  // Written last: its presence marks a finished run.
  write_text_file(out_dir / kSummaryFile, summary.dump(2) + "\n");
  spdlog::info("finished: {}", summary["final"].dump());
  return summary;
}

}  // namespace metaplast::learning
