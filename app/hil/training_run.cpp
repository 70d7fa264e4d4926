#include "app/hil/training_run.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "app/board/board_session.hpp"
#include "app/hil/endurance_report.hpp"
#include "app/hil/journal.hpp"
#include "app/hil/live_training.hpp"
#include "app/hil/memory_report.hpp"
#include "app/hil/placement.hpp"
#include "app/hil/snapshot_h5.hpp"
#include "app/util/csv.hpp"
#include "common/atomic_file.hpp"
#include "common/clock.hpp"
#include "common/json_file.hpp"

namespace metaplast::hil {

namespace {

namespace fs = std::filesystem;

// The network's stores as the loop's weight backend.
class StoresBackend final : public learning::WeightBackend {
 public:
  explicit StoresBackend(NetworkStores& stores) : stores_(stores) {}
  nlohmann::json describe() const override { return stores_.store_json(); }
  void program_initial(std::size_t layer, std::span<const float> wq,
                       std::span<float> effective) override {
    stores_.program_initial(layer, wq, effective);
  }
  std::size_t after_step(std::size_t layer, std::span<const float> wq, std::span<float> effective,
                         std::span<const std::uint32_t> changed) override {
    return stores_.after_step(layer, wq, effective, changed);
  }
  std::optional<std::span<const std::uint32_t>> effective_changes(
      std::size_t layer) const override {
    const WeightStore& store = stores_.layer(layer);
    if (store.kind() != StoreKind::ideal) return std::nullopt;
    return store.last_programmed();
  }
  // A board store's update shares nothing with the other layers' stores (its cells, its journal
  // hooks; its compare runs inline, under parallel_ranges' size threshold).
  bool waits_on_link(std::size_t layer) const override {
    return stores_.layer(layer).kind() == StoreKind::board;
  }
  void end_step(const std::vector<std::span<float>>& effective) override {
    stores_.end_step(effective);
  }
  std::uint64_t end_epoch(const std::string& task, int epoch) override {
    return stores_.end_epoch(task, epoch);
  }
  std::uint64_t total_writes() const override { return stores_.total_writes(); }
  std::string save() const override { return stores_.save(); }
  void load(const std::string& state, const std::vector<std::span<float>>& effective) override {
    stores_.load(state, effective);
  }
  nlohmann::json writes_json() const override { return stores_.writes_json(); }

 private:
  NetworkStores& stores_;
};

// The board layers' records (docs/run-records.md): journal, reconciliation on resume, epoch
// snapshots, the board's counters in the summary. Does nothing when no layer is on a board.
class BoardRecords final : public learning::TrainingObserver {
 public:
  BoardRecords(const devices::Calibration& calibration, LiveTraining* live)
      : calibration_(calibration), live_(live) {}

  // Once the stores exist (the loop's make_backend).
  void attach(const fs::path& out_dir, NetworkStores& stores) {
    stores_ = &stores;
    if (stores.board_cells() == nullptr) return;
    chip_id_ = stores.store_json().value("chip", "");
    journal_ = std::make_unique<BoardRunJournal>(out_dir, *stores.board_cells(), chip_id_);
  }

  void on_run_start(const learning::RunStart& run) override {
    if (!journal_) return;
    if (run.resumed) {
      journal_->before_resume_load();
    } else {
      journal_->start(run.out_dir.filename().string() + "-" + common::utc_now_iso8601());
    }
  }
  void on_weights_ready(const learning::RunStart& run) override {
    if (journal_ && run.resumed) reconcile(run);
  }
  void on_epoch_start(const learning::EpochStart& epoch) override {
    if (!journal_) return;
    journal_->context().phase = "train";
    journal_->context().task = epoch.task;
    journal_->context().epoch = epoch.epoch;
  }
  void on_step_start(std::uint64_t /*step*/) override {
    if (journal_) ++journal_->context().step;
  }
  // A crash between the snapshot and the checkpoint rewrites the same snapshot.
  void on_epoch_trained(const learning::EpochEnd& epoch) override {
    if (journal_) write_epoch_snapshot(epoch);
  }
  void on_checkpoint(const learning::EpochEnd& epoch) override {
    if (journal_) {
      journal_->checkpoint(epoch.next_task_index, epoch.next_epochs_done, epoch.task, epoch.epoch);
    }
  }
  void on_finish(const learning::RunFinish& run, nlohmann::json& summary) override {
    if (journal_) add_board_writes(run.out_dir, summary["writes"]);
  }

 private:
  void reconcile(const learning::RunStart& run);
  void write_epoch_snapshot(const learning::EpochEnd& epoch);
  void add_board_writes(const fs::path& out_dir, nlohmann::json& writes);

  nlohmann::json link_json();

  const devices::Calibration& calibration_;
  LiveTraining* live_;  // null: no live view
  NetworkStores* stores_ = nullptr;
  std::string chip_id_;
  std::uint64_t reconciliations_ = 0;
  std::unique_ptr<BoardRunJournal> journal_;
};

// In band as the board store judges it on resume: the calibrated level medians.
void BoardRecords::reconcile(const learning::RunStart& run) {
  const ConductanceMapping device_mapping(calibration_);
  std::vector<double> level_targets_us;
  for (std::size_t i = 0; i <= calibration_.hcs_levels.size(); ++i) {
    level_targets_us.push_back(device_mapping.target_us(i));
  }
  const nlohmann::json record =
      journal_->reconcile_resume(run.task_index, run.epochs_done, stores_->board_placement().cells,
                                 level_targets_us, VerifyOptions{}.band_us);
  ++reconciliations_;
  spdlog::info("resume on board boot {}: {} of {} placed cells in band, {} reprogrammed",
               journal_->boot_id(), record["placed_cells_in_band"].get<std::size_t>(),
               record["placed_cells"].get<std::size_t>(),
               record["reprogrammed_cells"].get<std::size_t>());
}

// The epoch's HDF5 snapshot of the board layers (reads every placed cell once), and the latest
// map as conductances.csv for `metaplast report`'s conductance map.
void BoardRecords::write_epoch_snapshot(const learning::EpochEnd& epoch) {
  BoardCells& cells = *stores_->board_cells();
  const auto& info = cells.board().info();
  const std::size_t n = info.cells();
  ArraySnapshot snapshot;
  snapshot.rows = info.rows;
  snapshot.cols = info.cols;
  snapshot.conductance_us.assign(n, std::nanf(""));
  snapshot.target_conductance_us.assign(n, std::nanf(""));
  snapshot.target_level.assign(n, -1);
  snapshot.layer.assign(n, -1);
  snapshot.programming_count = cells.writes_per_cell();
  snapshot.verify = journal_->take_verify_rows();
  const PlacedCells placed = stores_->board_placement();
  std::vector<instruments::Cell> to_read;
  for (auto index : placed.cells) to_read.push_back(cells.cell(index));
  const auto readings =
      to_read.empty() ? std::vector<instruments::CellReading>{} : cells.read(to_read);
  for (std::size_t k = 0; k < placed.cells.size(); ++k) {
    const std::uint32_t index = placed.cells[k];
    snapshot.conductance_us[index] = static_cast<float>(readings[k].conductance_us);
    snapshot.layer[index] = placed.layer[k];
    const std::int16_t level = journal_->cell_levels()[index];
    snapshot.target_level[index] = level;
    if (level >= 0) {
      snapshot.target_conductance_us[index] = static_cast<float>(
          cells.board().level_conductance_us(static_cast<instruments::Level>(level)));
    }
  }
  snapshot.run_id = journal_->run_id();
  snapshot.chip_id = chip_id_;
  snapshot.board_serial = info.serial;
  snapshot.board_boot_id = info.boot_id;
  snapshot.task = epoch.task;
  snapshot.epoch = epoch.epoch;
  snapshot.epoch_index = epoch.epoch_index;
  snapshot.band_us = VerifyOptions{}.band_us;
  snapshot.board_settings = cells.board().settings();
  util::CsvWriter csv({"row", "col", "conductance_us"});
  for (std::size_t index = 0; index < n; ++index) {
    if (std::isnan(snapshot.conductance_us[index])) continue;
    csv.integer(index / info.cols).integer(index % info.cols);
    csv.number(snapshot.conductance_us[index]).end_row();
  }
  common::write_file_atomically(epoch.out_dir / "conductances.csv", csv.str());
  const fs::path file = snapshot_path(epoch.out_dir, epoch.epoch_index);
  write_snapshot_h5(file, snapshot);
  journal_->snapshot_written(file, epoch.task, epoch.epoch);
  if (live_ != nullptr) live_->on_board_snapshot(snapshot, link_json());
}

// The link's health as the live view shows it (docs/live.md, "Updates").
nlohmann::json BoardRecords::link_json() {
  BoardCells& cells = *stores_->board_cells();
  return link_update(cells.board().link_stats(), cells.reboots_reconciled(), reconciliations_);
}

// summary.json's writes with the board's view: pulses recovered after crashes, reboots, the
// board's own counters (end minus start), and cell_writes.csv.
void BoardRecords::add_board_writes(const fs::path& out_dir, nlohmann::json& writes) {
  // Pulses of epochs lost in a crash (from the board's counters) count as writes too.
  const std::uint64_t recovered = journal_->recovered_writes();
  writes["recovered_after_crash"] = recovered;
  writes["total"] = writes["total"].get<std::uint64_t>() + recovered;
  std::uint64_t board_layer_writes = recovered;
  for (const auto& layer : writes["per_layer"]) {
    if (layer["store"] == "board") board_layer_writes += layer["writes"].get<std::uint64_t>();
  }
  const auto counters_end = journal_->finish();
  BoardCells& cells = *stores_->board_cells();
  // Reboots while reading those counters too.
  writes["reboots_reconciled"] = cells.reboots_reconciled();
  const auto& counters_start = journal_->counters_start();
  std::uint64_t increments = 0, cell_writes = 0;
  const auto& per_cell = cells.writes_per_cell();
  util::CsvWriter csv({"row", "col", "writes"});
  const std::uint16_t cols = cells.board().info().cols;
  for (std::size_t c = 0; c < per_cell.size(); ++c) {
    if (c < counters_start.size()) increments += counters_end[c] - counters_start[c];
    cell_writes += per_cell[c];
    if (per_cell[c] > 0) csv.integer(c / cols).integer(c % cols).integer(per_cell[c]).end_row();
  }
  common::write_file_atomically(out_dir / "cell_writes.csv", csv.str());
  writes["board"] = {{"layer_writes", board_layer_writes},
                     {"cell_writes", cell_writes},
                     // Unknown for a run begun before journals (no start counters).
                     {"counter_increments", counters_start.empty() ? nlohmann::json(nullptr)
                                                                   : nlohmann::json(increments)},
                     {"unit",
                      "SET + RESET pulses; counter_increments: the board's own "
                      "counters, end minus start of the run, every cell"}};
}

// endurance.csv/.gp/.png and memory.json, and their summaries in summary.json.
class StoreReports final : public learning::TrainingObserver {
 public:
  void attach(NetworkStores& stores) { stores_ = &stores; }
  void on_finish(const learning::RunFinish& run, nlohmann::json& summary) override {
    summary["endurance"] = write_endurance_report(run.out_dir, stores_->device_writes_by_kind());
    summary["memory"] = write_memory_report(run.out_dir, run.layer_sizes, stores_->analog_devices(),
                                            run.consolidation_bytes);
  }

 private:
  NetworkStores* stores_ = nullptr;
};

StoreOptions store_options(const learning::TrainConfig& config, std::size_t layers,
                           Mapping mapping) {
  StoreOptions options;
  options.placement = parse_placement(config.placement, layers);
  options.seed = config.seed;
  options.mapping = mapping;
  options.reread_every = config.reread_every;
  options.device = config.device;
  options.chips_dir = config.chips_dir;
  options.chip = config.chip;
  options.station = config.station;
  options.record = config.record;
  options.calibration_from_file = !config.calibration.empty();
  options.board_settings = config.board_settings;
  return options;
}

// A resumed run keeps the board settings it started with (config.json, "store"/"board_settings")
// unless config.allow_settings_change: checked before the board is opened (docs/bench.md, "Pulse
// and read conditions").
void check_resumed_settings(const learning::TrainConfig& config, const fs::path& out_dir) {
  const fs::path file = out_dir / learning::kConfigFile;
  if (config.placement.find("board") == std::string::npos || !fs::exists(file)) return;
  const nlohmann::json stored = common::read_json_file(file);
  const auto store = stored.find("store");
  if (store == stored.end() || !store->is_object() || !store->contains("board_settings")) return;
  const auto recorded = instruments::settings_from_json(store->at("board_settings"), file.string(),
                                                        "/store/board_settings");
  const auto now =
      board::session_settings(board_session(config.device, config.station, config.board_settings));
  const auto differences = instruments::setting_differences(recorded, now);
  if (differences.empty()) return;
  std::string list;
  for (const auto& d : differences) list += "\n  " + d;
  if (!config.allow_settings_change) {
    throw std::invalid_argument(
        "train --resume " + out_dir.string() +
        ": the board settings differ from those the run "
        "was started with (" +
        file.string() + "):" + list +
        "\nresume with the run's settings (drop the setting options, or restore the station "
        "file's board_settings), or pass --allow-settings-change to continue with the new ones");
  }
  spdlog::warn(
      "train --resume: continuing with other board settings than the run started with "
      "(--allow-settings-change; summary.json records the new ones):{}",
      list);
}

}  // namespace

nlohmann::json run_training(const learning::TrainConfig& config, const fs::path& out_dir,
                            bool resume, const learning::RunControl& control,
                            const std::vector<learning::TrainingObserver*>& observers,
                            live::LiveFeed* live) {
  config.validate();
  if (resume) check_resumed_settings(config, out_dir);
  // Levels from the device calibration (non-uniform Q_i) as soon as devices are involved.
  const devices::Calibration calibration = run_calibration(config.calibration);
  const Mapping mapping = parse_mapping(config.mapping);
  learning::TrainingHooks hooks(
      config.calibrated_levels()
          ? learning::Quantizer(ConductanceMapping(calibration, mapping).levels())
          : learning::Quantizer::uniform(config.levels, -1.0f, 1.0f));
  std::unique_ptr<NetworkStores> stores;
  std::optional<LiveTraining> live_view;
  if (live != nullptr) live_view.emplace(*live);
  BoardRecords board(calibration, live_view ? &*live_view : nullptr);
  StoreReports reports;
  hooks.make_backend = [&](const std::vector<std::size_t>& layer_weights) {
    stores = std::make_unique<NetworkStores>(store_options(config, layer_weights.size(), mapping),
                                             layer_weights, hooks.quantizer, calibration);
    board.attach(out_dir, *stores);
    reports.attach(*stores);
    if (live_view) live_view->attach(*stores);
    return std::make_unique<StoresBackend>(*stores);
  };
  hooks.observers = {&board, &reports};
  hooks.observers.insert(hooks.observers.end(), observers.begin(), observers.end());
  hooks.kept_files = {kJournalFile};
  hooks.discarded_files = {"conductances.csv", "snapshots"};
  if (!live_view) return learning::train(config, out_dir, resume, hooks, control);
  hooks.observers.push_back(&*live_view);
  learning::RunControl watched = control;  // the epoch's evaluations reach the view too
  watched.on_epoch_end = [&](const learning::EpochReport& report) {
    live_view->on_epoch_report(report);
    if (control.on_epoch_end) control.on_epoch_end(report);
  };
  return learning::train(config, out_dir, resume, hooks, watched);
}

}  // namespace metaplast::hil
