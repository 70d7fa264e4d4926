#include "app/learning/trainer.hpp"

#include <cblas.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

#include "app/learning/checkpoint.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/gradient_projection.hpp"
#include "app/util/csv.hpp"
#include "app/util/progress.hpp"
#include "app/util/sha256.hpp"
#include "common/atomic_file.hpp"

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

void write_text_file(const fs::path& file, const std::string& text) {
  common::write_file_atomically(file, text);
}

// metrics.csv's columns (docs/run-records.md).
util::CsvWriter metrics_table() {
  return util::CsvWriter({"task_trained", "epoch", "task_evaluated", "split", "accuracy", "loss"});
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
// resume: its files are set aside (the observers' kept files renamed, docs/run-records.md) and
// the run starts over in the same folder, whether asked with --resume or with the same --out.
bool stopped_before_first_checkpoint(const fs::path& out_dir, const TrainingHooks& hooks) {
  if (!fs::is_directory(out_dir) || fs::exists(out_dir / kCheckpointFile) ||
      fs::exists(out_dir / kSummaryFile)) {
    return false;
  }
  if (fs::exists(out_dir / kConfigFile)) return true;
  return std::any_of(hooks.kept_files.begin(), hooks.kept_files.end(),
                     [&](const std::string& file) { return fs::exists(out_dir / file); });
}

void set_aside_stopped_run(const fs::path& out_dir, const TrainingHooks& hooks) {
  spdlog::warn("{}: the run there stopped before its first checkpoint; starting it over",
               out_dir.string());
  for (const std::string& name : hooks.kept_files) {
    const fs::path file = out_dir / name;
    if (!fs::exists(file)) continue;
    fs::path kept;
    for (int n = 1;; ++n) {
      kept = out_dir /
             (file.stem().string() + ".stopped-" + std::to_string(n) + file.extension().string());
      if (!fs::exists(kept)) break;
    }
    fs::rename(file, kept);
  }
  for (const char* file : {kConfigFile, kMetricsFile}) fs::remove_all(out_dir / file);
  for (const std::string& file : hooks.discarded_files) fs::remove_all(out_dir / file);
}

// Returns whether the run continues from a checkpoint (false: it starts from the beginning).
bool check_out_dir(const fs::path& out_dir, bool resume, const TrainingHooks& hooks) {
  if (resume) {
    if (fs::exists(out_dir / kSummaryFile)) {
      throw std::invalid_argument("--resume " + out_dir.string() +
                                  ": this run already finished (summary.json exists); nothing to "
                                  "resume");
    }
    if (!stopped_before_first_checkpoint(out_dir, hooks)) return true;
    set_aside_stopped_run(out_dir, hooks);
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
  if (stopped_before_first_checkpoint(out_dir, hooks)) {
    set_aside_stopped_run(out_dir, hooks);
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

// The training line on a terminal: task, epoch, images, loss, accuracy, rate and time left.
class Progress {
 public:
  void update(const std::string& label, std::size_t done, std::size_t of, double loss,
              double accuracy, std::uint64_t session_samples, double samples_left) {
    if (!line_.enabled()) return;
    const double elapsed = line_.elapsed_seconds();
    const double rate = elapsed > 0 ? static_cast<double>(session_samples) / elapsed : 0.0;
    char text[256];
    std::snprintf(text, sizeof text, "%s %zu/%zu  loss %.3f  acc %.1f%%  %.0f samples/s  ETA %s",
                  label.c_str(), done, of, loss, 100.0 * accuracy, rate,
                  rate > 0 ? util::format_duration(samples_left / rate).c_str() : "?");
    line_.show(text);
  }
  void clear() { line_.clear(); }

 private:
  util::ProgressLine line_;
};

// Every split is gathered into rows of the network's inputs: one image size for all.
void check_image_sizes(const std::vector<TaskSplit>& tasks) {
  const Dataset& first = tasks.front().train;
  for (const TaskSplit& task : tasks) {
    for (const Dataset* split : {&task.train, &task.validation, &task.test}) {
      if (split->rows == first.rows && split->cols == first.cols) continue;
      throw std::invalid_argument("--tasks: dataset file " + split->images_file.string() +
                                  " has images of " + std::to_string(split->rows) + " x " +
                                  std::to_string(split->cols) + " pixels, the network's input (" +
                                  first.images_file.string() + ") " + std::to_string(first.rows) +
                                  " x " + std::to_string(first.cols) +
                                  "; every task must have the same image size");
    }
  }
}

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// The whole of one run: set up from the config and the hooks, then run_tasks, then summary. Each
// step below is one job of the run; the hooks do everything that is not training.
class Run {
 public:
  Run(const TrainConfig& config, const fs::path& out_dir, bool resume, TrainingHooks& hooks,
      const RunControl& control);
  // Trains every remaining epoch; false when stopped on request (RunControl::stop_after_epoch).
  bool run_tasks();
  nlohmann::json stopped_summary() const;
  nlohmann::json finished_summary();

 private:
  struct Slots {
    std::size_t weights, gamma, beta;
  };
  struct EpochTotals {
    double loss_sum = 0.0;
    std::size_t correct = 0, seen = 0;
  };

  void describe_run();
  void make_backend();
  void start_fresh();
  void resume_from_checkpoint();
  void open_metrics();
  void write_metric(const MetricRow& row);
  template <class Hook>
  void notify(Hook&& hook) {
    for (TrainingObserver* observer : hooks_.observers) hook(*observer);
  }
  EpochTotals train_epoch(std::size_t t, std::size_t e);
  void train_step(const Dataset& train, std::size_t start, std::size_t n, EpochTotals& totals,
                  const std::string& label);
  // Every task's test and validation sets after an epoch; the report's log text.
  std::string evaluate_epoch(std::size_t t, int epoch, const std::vector<BatchNormState>& live,
                             EpochReport& report);
  // Layer l's optimizer step projected off the protected directions; `changed` receives the
  // W_Q elements it changed, as update_quantized gives them.
  void project_layer_step(std::size_t l, std::vector<std::uint32_t>& changed);
  // At task t's end: its training inputs grow the protected directions (gradient projection).
  void protect_task(std::size_t t, const std::vector<BatchNormState>& batchnorm);
  void end_epoch(std::size_t t, std::size_t e, const EpochTotals& totals);
  // Accuracy and mean loss on `data`; `each_batch`, when given, is called with the row count
  // after every evaluated batch (the network's last forward pass is that batch's).
  std::pair<double, double> evaluate(const Dataset& data,
                                     const std::vector<BatchNormState>& batchnorm,
                                     BatchNormStats stats,
                                     const std::function<void(std::size_t)>& each_batch = {});
  const std::vector<BatchNormState>& batchnorm_for(std::size_t k, bool own,
                                                   const std::vector<BatchNormState>& live) const;
  nlohmann::json other_bn_stats_summary(bool validation);

  const TrainConfig& config_;
  fs::path out_dir_;
  bool resume_;
  TrainingHooks& hooks_;
  const RunControl& control_;
  nlohmann::json datasets_json_ = nlohmann::json::object();
  std::vector<TaskSplit> tasks_;
  NetworkConfig net_config_;
  OptimizerConfig opt_config_;
  std::vector<std::size_t> sizes_;
  nlohmann::json run_config_;
  std::uint64_t config_hash_ = 0;
  std::size_t max_batch_ = 0;
  std::unique_ptr<Network> network_;
  std::unique_ptr<MetaplasticAdam> optimizer_;
  std::vector<Slots> slots_;
  // Gradient projection (docs/method.md 5.1): null when off. A projected layer's W_H before the
  // step, and the optimizer's W_Q of the unprojected step (replaced by the projected one's).
  std::unique_ptr<GradientProjection> projection_;
  std::vector<float> step_before_, unprojected_quantized_;
  std::unique_ptr<WeightBackend> backend_;
  // The optimizer writes W_Q here; the backend programs what changed and sets layer.quantized to
  // the effective weights the forward pass uses.
  std::vector<std::vector<float>> new_quantized_;
  std::vector<std::span<float>> effective_;
  std::vector<std::uint32_t> changed_;  // the W_Q elements a step changed, per layer in turn
  // The layers whose store waits on a link (asked once, of the backend), and per layer the W_Q
  // elements a step changed, kept while they program.
  std::vector<std::size_t> linked_;
  std::vector<std::vector<std::uint32_t>> linked_changed_;
  std::mt19937_64 rng_;
  TrainingState state_;
  fs::path metrics_path_, checkpoint_path_;
  std::ofstream metrics_;
  util::CsvWriter metrics_csv_ = metrics_table();
  std::vector<float> inputs_;
  std::vector<std::uint8_t> labels_;
  std::vector<std::size_t> order_, eval_indices_;
  std::unique_ptr<Progress> progress_;
  double planned_samples_ = 0.0;
  std::uint64_t session_samples_ = 0, session_steps_ = 0;
};

Run::Run(const TrainConfig& config, const fs::path& out_dir, bool resume, TrainingHooks& hooks,
         const RunControl& control)
    : config_(config), out_dir_(out_dir), hooks_(hooks), control_(control), rng_(config.seed) {
  config.validate();
  resume_ = check_out_dir(out_dir, resume, hooks);
  tasks_ = load_tasks(config, datasets_json_);
  net_config_.inputs = tasks_.front().train.pixels_per_image();
  net_config_.hidden = config.hidden;
  net_config_.outputs = 10;
  net_config_.init = config.init;
  net_config_.init_mode = config.init_mode;
  check_image_sizes(tasks_);
  opt_config_.learning_rate = config.learning_rate;
  opt_config_.mstar = config.mstar;
  opt_config_.rule = config.rule;
  opt_config_.depth_rate = config.depth_rate;
  describe_run();

  // Training batches, and evaluation batches (see `evaluate`): up to kEvalBatchRunning rows when
  // the run tests with running statistics.
  max_batch_ = config.batchnorm_stats == BatchNormStats::batch
                   ? config.batch
                   : std::max(config.batch, kEvalBatchRunning);
  network_ = std::make_unique<Network>(net_config_, hooks.quantizer, max_batch_);
  optimizer_ = std::make_unique<MetaplasticAdam>(opt_config_, hooks.quantizer, config.threads);
  for (const DenseLayer& layer : network_->layers()) {
    slots_.push_back({optimizer_->add_quantized_tensor(layer.hidden.size()),
                      optimizer_->add_plain_tensor(layer.outputs),
                      optimizer_->add_plain_tensor(layer.outputs)});
  }
  if (config.projection > 0.0f) {
    projection_ = std::make_unique<GradientProjection>(
        ProjectionConfig{config.projection, config.projection_feedback,
                         config.projection_feedback_every},
        *network_);
  }
  openblas_set_num_threads(config.threads);
  make_backend();

  metrics_path_ = out_dir / kMetricsFile;
  checkpoint_path_ = out_dir / kCheckpointFile;
  if (resume_) {
    resume_from_checkpoint();
  } else {
    start_fresh();
  }
  open_metrics();
  inputs_.resize(max_batch_ * net_config_.inputs);
  labels_.resize(max_batch_);
  for (const TaskSplit& task : tasks_) {
    planned_samples_ += static_cast<double>(task.train.size()) * config.epochs;
  }
  progress_ = std::make_unique<Progress>();
  spdlog::info("training {} task(s), {} epoch(s) each, m* = {} ({} rule), {} levels{}, into {}",
               tasks_.size(), config.epochs, config.mstar, to_string(config.rule),
               hooks.quantizer.levels().size(),
               config.calibrated_levels() ? " (from the calibration)" : " (uniform)",
               out_dir.string());
}

// config.json's content and the hash a checkpoint must match.
void Run::describe_run() {
  nlohmann::json options = config_.to_json();
  sizes_ = {net_config_.inputs};
  sizes_.insert(sizes_.end(), config_.hidden.begin(), config_.hidden.end());
  sizes_.push_back(net_config_.outputs);
  const auto& levels = hooks_.quantizer.levels();
  run_config_ = {
      {"options", options},
      {"network",
       {{"layers", sizes_},
        {"activation", "sign (straight-through where |x| <= 1)"},
        {"bias", false},
        {"input", "raw pixels / 255"}}},
      {"levels", std::vector<float>(levels.begin(), levels.end())},
      {"batchnorm",
       {{"protocol", std::string(to_string(config_.batchnorm))},
        {"test_statistics", std::string(to_string(config_.batchnorm_stats))},
        {"epsilon", net_config_.batchnorm_epsilon},
        {"momentum", net_config_.batchnorm_momentum}}},
      {"optimizer",
       {{"name", "metaplastic Adam"},
        {"beta1", opt_config_.beta1},
        {"beta2", opt_config_.beta2},
        {"epsilon", opt_config_.epsilon},
        {"weight_decay", opt_config_.weight_decay},
        {"reset_per_task", true}}},
      {"datasets", datasets_json_},
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
  // Compared by the board session on a resume (docs/bench.md, "Pulse and read conditions").
  hashed.erase("board-settings");
  // Runs made before hardware in the loop hash as they did then.
  if (!config_.calibrated_levels() && config_.reread_every == 0 && config_.chip.empty()) {
    for (const char* key : {"placement", "calibration", "reread-every", "chip"}) hashed.erase(key);
  }
  config_hash_ = fnv1a64(hashed.dump() + datasets_json_.dump() + run_config_["levels"].dump());
}

void Run::make_backend() {
  std::vector<std::size_t> layer_weights;
  for (const DenseLayer& layer : network_->layers()) layer_weights.push_back(layer.hidden.size());
  if (!hooks_.make_backend) throw std::logic_error("train: TrainingHooks without make_backend");
  backend_ = hooks_.make_backend(layer_weights);
  run_config_["store"] = backend_->describe();
  for (DenseLayer& layer : network_->layers()) {
    new_quantized_.emplace_back(layer.quantized.size());
    effective_.emplace_back(layer.quantized);
  }
  for (std::size_t l = 0; l < layer_weights.size(); ++l) {
    if (backend_->waits_on_link(l)) linked_.push_back(l);
  }
  linked_changed_.resize(layer_weights.size());
}

void Run::start_fresh() {
  network_->initialise(rng_);
  const RunStart start{out_dir_, false, 0, 0};
  notify([&](TrainingObserver& o) { o.on_run_start(start); });
  for (std::size_t l = 0; l < network_->layers().size(); ++l) {
    new_quantized_[l] = network_->layers()[l].quantized;
    backend_->program_initial(l, new_quantized_[l], effective_[l]);
  }
  notify([&](TrainingObserver& o) { o.on_weights_ready(start); });
  state_.saved_batchnorm.resize(tasks_.size());
  write_text_file(out_dir_ / kConfigFile, run_config_.dump(2) + "\n");
}

void Run::resume_from_checkpoint() {
  state_ = load_checkpoint(checkpoint_path_, config_hash_);
  check_checkpoint_fits(state_, checkpoint_path_, *network_, tasks_.size(),
                        static_cast<std::size_t>(config_.epochs));
  auto& layers = network_->layers();
  if (state_.hidden_weights.size() != layers.size() ||
      state_.saved_batchnorm.size() != tasks_.size()) {
    throw std::runtime_error("checkpoint " + checkpoint_path_.string() +
                             " does not match the network of config.json");
  }
  for (std::size_t l = 0; l < layers.size(); ++l) {
    if (state_.hidden_weights[l].size() != layers[l].hidden.size()) {
      throw std::runtime_error("checkpoint " + checkpoint_path_.string() + ": layer " +
                               std::to_string(l) + " has the wrong size");
    }
    layers[l].hidden = state_.hidden_weights[l];
  }
  network_->requantize();
  // The optimizer finds a step's changes against the W_Q before it.
  for (std::size_t l = 0; l < layers.size(); ++l) new_quantized_[l] = layers[l].quantized;
  const RunStart start{out_dir_, true, state_.task_index, state_.epochs_done};
  notify([&](TrainingObserver& o) { o.on_run_start(start); });
  if (state_.store_state.empty()) {
    for (std::size_t l = 0; l < layers.size(); ++l) {
      backend_->program_initial(l, layers[l].quantized, effective_[l]);
    }
  } else {
    backend_->load(state_.store_state, effective_);
  }
  notify([&](TrainingObserver& o) { o.on_weights_ready(start); });
  network_->set_batchnorm_state(state_.live_batchnorm);
  optimizer_->restore(state_.optimizer_steps, state_.optimizer_moments);
  if (projection_ && !state_.protected_spaces.empty()) {
    projection_->restore(state_.protected_spaces);
  }
  std::istringstream rng_text(state_.rng_state);
  rng_text >> rng_;
  if (!rng_text) throw std::runtime_error("checkpoint: unreadable random generator state");
}

// metrics.csv is rewritten from the checkpoint, dropping rows of an epoch that did not finish.
void Run::open_metrics() {
  metrics_.open(metrics_path_, std::ios::trunc);
  metrics_csv_ = metrics_table();
  metrics_ << metrics_csv_.take();  // the header
  for (const MetricRow& row : state_.metrics) write_metric(row);
  flush_or_throw(metrics_, metrics_path_);
}

void Run::write_metric(const MetricRow& row) {
  metrics_csv_.text(row.task_trained).integer(row.epoch).text(row.task_evaluated).text(row.split);
  metrics_csv_.number(row.accuracy, "%.6f").number(row.loss, "%.6f").end_row();
  metrics_ << metrics_csv_.take();
}

std::pair<double, double> Run::evaluate(const Dataset& data,
                                        const std::vector<BatchNormState>& batchnorm,
                                        BatchNormStats stats,
                                        const std::function<void(std::size_t)>& each_batch) {
  double loss_sum = 0.0;
  std::size_t correct = 0;
  eval_indices_.resize(data.size());
  std::iota(eval_indices_.begin(), eval_indices_.end(), std::size_t{0});
  // Batch statistics depend on the batch: the training batch size, as the BNN code tests.
  // Running statistics do not: as large a batch as the buffers allow.
  const std::size_t step = stats == BatchNormStats::batch ? config_.batch : max_batch_;
  for (std::size_t start = 0; start < data.size(); start += step) {
    const std::size_t n = std::min(step, data.size() - start);
    data.gather({eval_indices_.data() + start, n}, inputs_.data());
    const BatchResult r =
        network_->evaluate_batch(inputs_.data(), {data.labels.data() + start, n}, stats, batchnorm);
    loss_sum += r.loss_sum;
    correct += r.correct;
    if (each_batch) each_batch(n);
  }
  const double count = static_cast<double>(std::max<std::size_t>(data.size(), 1));
  return {static_cast<double>(correct) / count, loss_sum / count};
}

bool Run::run_tasks() {
  for (std::size_t t = state_.task_index; t < tasks_.size(); ++t) {
    const std::size_t first_epoch = t == state_.task_index ? state_.epochs_done : 0;
    for (std::size_t e = first_epoch; e < static_cast<std::size_t>(config_.epochs); ++e) {
      const EpochTotals totals = train_epoch(t, e);
      end_epoch(t, e, totals);
      const bool more = state_.task_index < tasks_.size();
      if (more && control_.stop_after_epoch != nullptr && control_.stop_after_epoch->load()) {
        spdlog::info("stopped after {} epoch {}/{}; continue with --resume {}", tasks_[t].name,
                     e + 1, config_.epochs, out_dir_.string());
        return false;
      }
    }
  }
  return true;
}

Run::EpochTotals Run::train_epoch(std::size_t t, std::size_t e) {
  const TaskSplit& task = tasks_[t];
  if (e == 0) optimizer_->reset();  // a fresh optimizer for every task
  optimizer_->set_learning_rate(config_.learning_rate *
                                std::pow(config_.lr_decay, static_cast<float>(e)));
  const std::size_t epochs = static_cast<std::size_t>(config_.epochs);
  const EpochStart epoch{task.name,
                         t,
                         static_cast<int>(e + 1),
                         task.train.size(),
                         tasks_.size() * epochs,
                         static_cast<int>(t * epochs + e + 1)};
  notify([&](TrainingObserver& o) { o.on_epoch_start(epoch); });
  order_.resize(task.train.size());
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  shuffle(order_, rng_);

  const std::string label =
      task.name + " epoch " + std::to_string(e + 1) + "/" + std::to_string(config_.epochs);
  EpochTotals totals;
  const auto epoch_start = Clock::now();
  for (std::size_t start = 0; start + 2 <= order_.size(); start += config_.batch) {
    if (control_.abort_now != nullptr && control_.abort_now->load()) {
      progress_->clear();
      throw RunAborted("run in " + out_dir_.string() + " aborted during " + label +
                       "; the checkpoint of the previous epoch is intact (--resume " +
                       out_dir_.string() + " continues)");
    }
    train_step(task.train, start, std::min(config_.batch, order_.size() - start), totals, label);
  }
  state_.train_seconds += seconds_since(epoch_start);
  state_.samples_trained += totals.seen;
  return totals;
}

void Run::train_step(const Dataset& train, std::size_t start, std::size_t n, EpochTotals& totals,
                     const std::string& label) {
  train.gather({order_.data() + start, n}, inputs_.data());
  for (std::size_t k = 0; k < n; ++k) labels_[k] = train.labels[order_[start + k]];
  const BatchResult r = network_->train_batch(inputs_.data(), {labels_.data(), n});
  optimizer_->begin_step();
  ++session_steps_;
  notify([&](TrainingObserver& o) { o.on_step_start(session_steps_); });
  std::size_t changes = 0;
  auto& layers = network_->layers();
  const auto update_layer = [&](std::size_t l, std::vector<std::uint32_t>& changed) {
    DenseLayer& layer = layers[l];
    if (projection_ && projection_->protects(l)) {
      project_layer_step(l, changed);
    } else {
      optimizer_->update_quantized(slots_[l].weights, layer.hidden, new_quantized_[l], layer.grad,
                                   changed);
    }
    optimizer_->update_plain(slots_[l].gamma, layer.batchnorm.gamma, layer.grad_gamma);
    optimizer_->update_plain(slots_[l].beta, layer.batchnorm.beta, layer.grad_beta);
  };
  const auto after_effective = [&](std::size_t l) {
    if (const auto set = backend_->effective_changes(l)) network_->weights_changed(l, *set);
  };
  // Layers on a link (a board) are stepped first and programmed on a thread of their own while
  // the others are stepped and programmed: every layer's update depends on its own state only,
  // so the numbers are those of one layer after the other, and the link's round trips overlap
  // the host's work.
  std::future<std::size_t> linked_changes;
  if (!linked_.empty()) {
    for (std::size_t l : linked_) update_layer(l, linked_changed_[l]);
    linked_changes = std::async(std::launch::async, [&] {
      std::size_t n = 0;
      for (std::size_t l : linked_) {
        n += backend_->after_step(l, new_quantized_[l], effective_[l], linked_changed_[l]);
      }
      return n;
    });
  }
  for (std::size_t l = 0; l < layers.size(); ++l) {
    if (std::find(linked_.begin(), linked_.end(), l) != linked_.end()) continue;
    update_layer(l, changed_);
    changes += backend_->after_step(l, new_quantized_[l], effective_[l], changed_);
    after_effective(l);
  }
  if (linked_changes.valid()) {
    changes += linked_changes.get();  // rethrows the link's error, if any
    for (std::size_t l : linked_) after_effective(l);
  }
  backend_->end_step(effective_);
  totals.loss_sum += r.loss_sum;
  totals.correct += r.correct;
  totals.seen += n;
  session_samples_ += n;
  const StepEnd step{session_steps_, n, r.loss_sum, r.correct, changes};
  notify([&](TrainingObserver& o) { o.on_step_end(step); });
  progress_->update(
      label, totals.seen, order_.size(), totals.loss_sum / static_cast<double>(totals.seen),
      static_cast<double>(totals.correct) / static_cast<double>(totals.seen), session_samples_,
      planned_samples_ - static_cast<double>(state_.samples_trained + totals.seen));
}

// Per-task BatchNorm (docs/method.md): task k evaluated with the state saved at its end, unless
// `own` is false (the task being trained, or the last one) or it has none yet.
const std::vector<BatchNormState>& Run::batchnorm_for(
    std::size_t k, bool own, const std::vector<BatchNormState>& live) const {
  const bool use_saved = config_.batchnorm == BatchNormProtocol::per_task && own &&
                         state_.saved_batchnorm[k].has_value();
  return use_saved ? *state_.saved_batchnorm[k] : live;
}

std::string Run::evaluate_epoch(std::size_t t, int epoch, const std::vector<BatchNormState>& live,
                                EpochReport& report) {
  std::string text;
  for (std::size_t k = 0; k < tasks_.size(); ++k) {
    const std::vector<BatchNormState>& batchnorm = batchnorm_for(k, k != t, live);
    for (const char* split : {"test", "validation"}) {
      const Dataset& data =
          std::string_view(split) == "test" ? tasks_[k].test : tasks_[k].validation;
      if (data.size() == 0) continue;
      const auto [accuracy, loss] = evaluate(data, batchnorm, config_.batchnorm_stats);
      MetricRow row{tasks_[t].name, epoch, tasks_[k].name, split, accuracy, loss};
      write_metric(row);
      state_.metrics.push_back(row);
      report.evaluations.push_back({tasks_[k].name, split, accuracy, loss});
      char part[96];
      std::snprintf(part, sizeof part, "  %s %s %.2f%%", tasks_[k].name.c_str(), split,
                    100.0 * accuracy);
      text += part;
    }
  }
  flush_or_throw(metrics_, metrics_path_);
  return text;
}

void Run::project_layer_step(std::size_t l, std::vector<std::uint32_t>& changed) {
  DenseLayer& layer = network_->layers()[l];
  step_before_.assign(layer.hidden.begin(), layer.hidden.end());
  unprojected_quantized_.resize(layer.hidden.size());
  optimizer_->update_quantized(slots_[l].weights, layer.hidden, unprojected_quantized_, layer.grad);
  projection_->project_step(l, step_before_, layer.hidden, layer.quantized,
                            optimizer_->step_count());
  // new_quantized_[l] holds the quantizer's values of W_H before the step.
  const Quantizer& quantizer = network_->quantizer();
  std::vector<float>& quantized = new_quantized_[l];
  changed.clear();
  for (std::size_t i = 0; i < quantized.size(); ++i) {
    const float q = quantizer.quantize(layer.hidden[i]);
    if (q != quantized[i]) {
      quantized[i] = q;
      changed.push_back(static_cast<std::uint32_t>(i));
    }
  }
}

void Run::protect_task(std::size_t t, const std::vector<BatchNormState>& batchnorm) {
  const auto start = Clock::now();
  projection_->begin_task();
  evaluate(tasks_[t].train, batchnorm, config_.batchnorm_stats,
           [&](std::size_t n) { projection_->add_batch(*network_, n); });
  projection_->end_task(*network_);
  state_.protected_spaces = projection_->spaces();
  std::string ranks;
  for (const ProtectedSpace& space : state_.protected_spaces) {
    ranks += (ranks.empty() ? "" : ", ") + std::to_string(space.rank);
  }
  spdlog::info("{}: {} of its input energy protected, directions per layer: {} ({:.1f} s)",
               tasks_[t].name, config_.projection, ranks, seconds_since(start));
}

// Evaluation, the checkpoint and the epoch's hooks.
void Run::end_epoch(std::size_t t, std::size_t e, const EpochTotals& totals) {
  const TaskSplit& task = tasks_[t];
  const int epoch = static_cast<int>(e + 1);
  const bool task_done = epoch == config_.epochs;
  const std::vector<BatchNormState> live = network_->batchnorm_state();
  if (task_done) state_.saved_batchnorm[t] = live;
  progress_->clear();
  EpochReport report;
  report.task = task.name;
  report.task_index = t;
  report.epoch = epoch;
  report.epochs = config_.epochs;
  const std::string evaluations = evaluate_epoch(t, epoch, live, report);
  if (task_done && projection_ && t + 1 < tasks_.size()) protect_task(t, live);

  state_.task_index = task_done ? t + 1 : t;
  state_.epochs_done = task_done ? 0 : e + 1;
  std::ostringstream rng_text;
  rng_text << rng_;
  state_.rng_state = rng_text.str();
  state_.hidden_weights.clear();
  for (const DenseLayer& layer : network_->layers()) state_.hidden_weights.push_back(layer.hidden);
  state_.optimizer_steps = optimizer_->step_count();
  state_.optimizer_moments = optimizer_->moments();
  state_.live_batchnorm = live;
  report.epoch_writes = backend_->end_epoch(task.name, epoch);
  report.total_writes = backend_->total_writes();
  const EpochEnd end{out_dir_,
                     task.name,
                     t,
                     epoch,
                     static_cast<int>(t * static_cast<std::size_t>(config_.epochs) + e + 1),
                     state_.task_index,
                     state_.epochs_done};
  // Before the checkpoint, so reads made here are in its counts.
  notify([&](TrainingObserver& o) { o.on_epoch_trained(end); });
  state_.store_state = backend_->save();
  save_checkpoint(checkpoint_path_, config_hash_, state_);
  notify([&](TrainingObserver& o) { o.on_checkpoint(end); });

  const double seen = static_cast<double>(std::max<std::size_t>(totals.seen, 1));
  spdlog::info("{} epoch {}/{} done: train loss {:.4f} acc {:.2f}%;{}", task.name, epoch,
               config_.epochs, totals.loss_sum / seen,
               100.0 * static_cast<double>(totals.correct) / seen, evaluations);
  if (control_.on_epoch_end) {
    report.train_accuracy = static_cast<double>(totals.correct) / seen;
    report.train_loss = totals.loss_sum / seen;
    report.train_seconds = state_.train_seconds;
    control_.on_epoch_end(report);
  }
}

nlohmann::json Run::stopped_summary() const {
  nlohmann::json stopped;
  stopped["status"] = "stopped";
  stopped["next"] = {{"task", tasks_[state_.task_index].name}, {"epoch", state_.epochs_done + 1}};
  stopped["config"] = run_config_;
  stopped["train_seconds"] = state_.train_seconds;
  stopped["samples_trained"] = state_.samples_trained;
  return stopped;
}

// The test sets once more with the other test-time BatchNorm statistics (the BNN code changed
// from running to batch statistics in 2023): one run answers for both protocols. The validation
// sets too (`validation`), so the choice between the two can be made on validation.
nlohmann::json Run::other_bn_stats_summary(bool validation) {
  const BatchNormStats other = config_.batchnorm_stats == BatchNormStats::running
                                   ? BatchNormStats::batch
                                   : BatchNormStats::running;
  nlohmann::json result = {{"bn-stats", std::string(to_string(other))}};
  const std::vector<BatchNormState> live = network_->batchnorm_state();
  for (std::size_t k = 0; k < tasks_.size(); ++k) {
    const auto& bn = batchnorm_for(k, k + 1 != tasks_.size(), live);
    result[tasks_[k].name] =
        evaluate(validation ? tasks_[k].validation : tasks_[k].test, bn, other).first;
  }
  return result;
}

nlohmann::json Run::finished_summary() {
  nlohmann::json summary;
  summary["status"] = "finished";
  nlohmann::json after_task = nlohmann::json::object();
  nlohmann::json after_task_validation = nlohmann::json::object();
  for (const MetricRow& row : state_.metrics) {
    if (row.epoch != config_.epochs) continue;
    auto& target = row.split == "test" ? after_task : after_task_validation;
    target[row.task_trained][row.task_evaluated] = row.accuracy;
  }
  const std::string& last = tasks_.back().name;
  summary["after_task"] = after_task;
  summary["final"] = after_task[last];
  if (config_.validation > 0.0) {
    summary["after_task_validation"] = after_task_validation;
    summary["final_validation"] = after_task_validation[last];
  }
  summary["final_other_bn_stats"] = other_bn_stats_summary(false);
  if (config_.validation > 0.0) {
    summary["final_validation_other_bn_stats"] = other_bn_stats_summary(true);
  }
  summary["config"] = run_config_;
  summary["train_seconds"] = state_.train_seconds;
  summary["samples_trained"] = state_.samples_trained;
  summary["samples_per_second"] =
      state_.train_seconds > 0 ? static_cast<double>(state_.samples_trained) / state_.train_seconds
                               : 0.0;
  summary["peak_rss_mb"] = static_cast<double>(peak_rss_kb()) / 1024.0;
  // Per layer, the forward product of the last evaluation (docs/method.md 1.1).
  summary["forward_product"] = nlohmann::json::array();
  for (std::size_t l = 0; l < network_->layers().size(); ++l) {
    summary["forward_product"].push_back(network_->forward_was_exact(l) ? "exact" : "float");
  }
  if (projection_) {
    // What the protected directions cost in host memory (docs/method.md 5.1).
    nlohmann::json ranks = nlohmann::json::array();
    std::size_t floats = 0;
    for (const ProtectedSpace& space : projection_->spaces()) {
      ranks.push_back(space.rank);
      floats += space.basis.size() + space.anchor.size();
    }
    summary["projection"] = {{"directions_per_layer", ranks}, {"host_bytes", floats * 4}};
  }
  summary["writes"] = backend_->writes_json();
  summary["store"] = backend_->describe();
  const RunFinish finish{out_dir_, sizes_,
                         has_consolidation_state(config_.rule) ? sizeof(float) : 0};
  notify([&](TrainingObserver& o) { o.on_finish(finish, summary); });
  // Written last: its presence marks a finished run.
  write_text_file(out_dir_ / kSummaryFile, summary.dump(2) + "\n");
  spdlog::info("finished: {}", summary["final"].dump());
  return summary;
}

}  // namespace

nlohmann::json train(const TrainConfig& config, const fs::path& out_dir, bool resume,
                     TrainingHooks& hooks, const RunControl& control) {
  Run run(config, out_dir, resume, hooks, control);
  if (!run.run_tasks()) return run.stopped_summary();
  return run.finished_summary();
}

}  // namespace metaplast::learning
