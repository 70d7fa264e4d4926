#include "app/hil/placement.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "app/board/board_session.hpp"

namespace metaplast::hil {

std::vector<StoreKind> parse_placement(const std::string& text, std::size_t layers) {
  std::vector<StoreKind> kinds;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    kinds.push_back(parse_store_kind(text.substr(start, comma - start)));
    start = comma + 1;
  }
  if (kinds.size() == 1) kinds.assign(layers, kinds.front());
  if (kinds.size() != layers) {
    throw std::invalid_argument("--placement " + text + ": " + std::to_string(kinds.size()) +
                                " stores for a network of " + std::to_string(layers) +
                                " layers; give one name for all layers or one per layer (input "
                                "layer first)");
  }
  return kinds;
}

std::string default_board_placement(std::size_t layers) {
  std::string placement;
  for (std::size_t l = 0; l + 1 < layers; ++l) placement += "virtual,";
  return placement + "board";
}

devices::Calibration run_calibration(const std::filesystem::path& file) {
  return file.empty() ? devices::Calibration::defaults() : devices::load_calibration(file);
}

NetworkStores::NetworkStores(const StoreOptions& options,
                             const std::vector<std::size_t>& layer_weights,
                             const learning::Quantizer& quantizer,
                             const devices::Calibration& calibration)
    : options_(options), levels_(quantizer.levels().begin(), quantizer.levels().end()) {
  calibration_identity_ = {{"chip_id", calibration.identity.chip_id},
                           {"board_serial", calibration.identity.board_serial},
                           {"date", calibration.identity.date},
                           {"source", calibration.identity.source},
                           {"relaxation", calibration.relaxation.enabled}};
  const bool any_board = std::find(options.placement.begin(), options.placement.end(),
                                   StoreKind::board) != options.placement.end();
  if (any_board) {
    if (options.device.empty()) {
      throw std::invalid_argument(
          "--placement puts a layer on the board but no --device is given; add e.g. --device "
          "'sim:?formed=1' (the in-process simulated board) or tcp:HOST:PORT");
    }
    board::SessionOptions session =
        board_session(options.device, options.station, options.board_settings);
    if (!options.record.empty()) session.record = options.record;
    settings_ = board::session_settings(session);  // station limits: before the board is opened
    board_ = board::open_board(session);
    const auto& info = board_->info();
    // --chip (or the station's, merged in by the caller), else the board's serial.
    chip_id_ = chip_id_for_board(options.chip, "", info.serial);
    if (options.calibration_from_file) require_same_chip(calibration, chip_id_);
    std::shared_ptr<ChipRegistry> registry;
    const auto registry_dir =
        ChipRegistry::for_run(options.chips_dir, board::is_sim_address(options.device));
    if (!registry_dir.empty()) registry = std::make_shared<ChipRegistry>(registry_dir);
    cells_ = std::make_unique<BoardCells>(*board_, settings_, registry, chip_id_);
    cells_->activate();
  }
  for (std::size_t l = 0; l < layer_weights.size(); ++l) {
    switch (options.placement[l]) {
      case StoreKind::ideal:
        stores_.push_back(std::make_unique<IdealStore>(quantizer, layer_weights[l]));
        break;
      case StoreKind::virtual_devices:
        // One device population per layer, all from the run's seed.
        stores_.push_back(std::make_unique<VirtualStore>(
            quantizer, layer_weights[l], calibration,
            options.seed * 0x9e3779b97f4a7c15ULL + 1000003ULL * (l + 1), options.verify,
            options.mapping));
        break;
      case StoreKind::board: {
        auto store = std::make_unique<BoardStore>(quantizer, layer_weights[l], *cells_,
                                                  calibration, options.verify, options.mapping);
        board_layers_.emplace_back(l, store.get());
        stores_.push_back(std::move(store));
        break;
      }
    }
  }
  if (cells_) {
    std::size_t needed = 0;
    for (const auto& s : stores_) needed += s->kind() == StoreKind::board ? s->devices() : 0;
    if (needed > cells_->free_cells()) {
      throw std::invalid_argument(
          "--placement: the board layers need " + std::to_string(needed) + " cells (" +
          std::string(to_string(options.mapping)) + " mapping, " +
          std::to_string(devices_per_weight(options.mapping)) + " per weight) but the array has " +
          std::to_string(cells_->free_cells()) + " free cells (" + std::to_string(cells_->cells()) +
          " minus bad cells); put fewer layers on the board, use --mapping single or a smaller "
          "network");
    }
  }
}

board::SessionOptions board_session(const std::string& device, const std::filesystem::path& station,
                                    const nlohmann::json& board_settings) {
  board::SessionOptions session;
  session.device = device;
  if (!station.empty()) session.station = station;
  session.settings =
      instruments::setting_values_from_json(board_settings, "train", "/board-settings");
  return session;
}

NetworkStores::~NetworkStores() {
  try {
    if (cells_) cells_->flush_registry("train");
  } catch (const std::exception& e) {
    spdlog::warn("chip registry not updated: {}", e.what());
  }
}

PlacedCells NetworkStores::board_placement() const {
  PlacedCells placed;
  for (const auto& [l, store] : board_layers_) {
    for (auto cell : store->placement()) {
      placed.cells.push_back(cell);
      placed.layer.push_back(static_cast<std::int16_t>(l));
    }
  }
  return placed;
}

void NetworkStores::program_initial(std::size_t l, std::span<const float> wq,
                                    std::span<float> effective) {
  const std::uint64_t before = stores_[l]->writes();
  stores_[l]->program_all(wq, effective);
  initial_writes_ += stores_[l]->writes() - before;
  epoch_start_writes_ = total_writes();
}

void NetworkStores::end_step(const std::vector<std::span<float>>& effective) {
  ++steps_;
  for (auto& store : stores_) store->tick();
  if (options_.reread_every > 0 &&
      steps_ % static_cast<std::uint64_t>(options_.reread_every) == 0) {
    for (std::size_t l = 0; l < stores_.size(); ++l) stores_[l]->refresh(effective[l]);
  }
}

std::uint64_t NetworkStores::end_epoch(const std::string& task, int epoch) {
  const std::uint64_t total = total_writes();
  const std::uint64_t writes = total - epoch_start_writes_;
  per_epoch_.push_back({task, epoch, writes});
  epoch_start_writes_ = total;
  if (cells_) cells_->flush_registry("train");
  return writes;
}

std::uint64_t NetworkStores::total_writes() const {
  std::uint64_t n = 0;
  for (const auto& s : stores_) n += s->writes();
  return n;
}

std::uint64_t NetworkStores::total_reads() const {
  std::uint64_t n = 0;
  for (const auto& s : stores_) n += s->reads();
  return n;
}

std::vector<std::uint32_t> NetworkStores::device_writes() const {
  const bool all_ideal = std::all_of(stores_.begin(), stores_.end(),
                                     [](const auto& s) { return s->kind() == StoreKind::ideal; });
  std::vector<std::uint32_t> out;
  for (const auto& s : stores_) {
    if (!all_ideal && s->kind() == StoreKind::ideal) continue;
    const auto w = s->device_writes();
    out.insert(out.end(), w.begin(), w.end());
  }
  return out;
}

std::vector<DeviceWrites> NetworkStores::device_writes_by_kind() const {
  const bool all_ideal = std::all_of(stores_.begin(), stores_.end(),
                                     [](const auto& s) { return s->kind() == StoreKind::ideal; });
  std::vector<DeviceWrites> out;
  for (StoreKind kind : {StoreKind::board, StoreKind::virtual_devices, StoreKind::ideal}) {
    if (kind == StoreKind::ideal && !all_ideal) continue;
    DeviceWrites group{std::string(to_string(kind)), {}};
    for (const auto& s : stores_) {
      if (s->kind() != kind) continue;
      const auto w = s->device_writes();
      group.per_device.insert(group.per_device.end(), w.begin(), w.end());
    }
    if (!group.per_device.empty()) out.push_back(std::move(group));
  }
  return out;
}

std::size_t NetworkStores::analog_devices() const {
  std::size_t n = 0;
  for (const auto& s : stores_) n += s->kind() == StoreKind::ideal ? 0 : s->devices();
  return n;
}

nlohmann::json NetworkStores::writes_json() const {
  nlohmann::json j;
  j["total"] = total_writes();
  j["initial"] = initial_writes_;
  j["reads"] = total_reads();
  const auto per_device = device_writes();
  j["max_per_cell"] =
      per_device.empty() ? 0u : *std::max_element(per_device.begin(), per_device.end());
  nlohmann::json per_epoch = nlohmann::json::array(), detail = nlohmann::json::array();
  for (const auto& e : per_epoch_) {
    per_epoch.push_back(e.writes);
    detail.push_back({{"task", e.task}, {"epoch", e.epoch}, {"writes", e.writes}});
  }
  j["per_epoch"] = per_epoch;
  j["per_epoch_detail"] = detail;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& s : stores_) {
    const auto w = s->device_writes();
    layers.push_back({{"store", std::string(to_string(s->kind()))},
                      {"weights", s->size()},
                      {"devices", s->devices()},
                      {"writes", s->writes()},
                      {"reads", s->reads()},
                      {"max_per_device", w.empty() ? 0u : *std::max_element(w.begin(), w.end())}});
  }
  j["per_layer"] = layers;
  j["unit"] =
      "programming operations (SET or RESET pulses, verify retries included); ideal "
      "layers: level changes";
  if (cells_) {
    j["bad_cells_found"] = cells_->new_bad_cells().size();
    std::uint64_t remapped = 0;
    for (const auto& s : stores_) {
      if (auto* b = dynamic_cast<const BoardStore*>(s.get())) remapped += b->remapped();
    }
    j["remapped"] = remapped;
    j["reboots_reconciled"] = cells_->reboots_reconciled();
  }
  return j;
}

nlohmann::json NetworkStores::store_json() const {
  nlohmann::json j;
  nlohmann::json placement = nlohmann::json::array();
  for (const auto& s : stores_) placement.push_back(std::string(to_string(s->kind())));
  j["placement"] = placement;
  j["mapping"] = std::string(to_string(options_.mapping));
  j["mapping_formula"] = std::string(mapping_formula(options_.mapping));
  j["levels"] = levels_;
  j["calibration"] = calibration_identity_;
  j["reread_every"] = options_.reread_every;
  j["verify"] = {{"band_us", options_.verify.band_us},
                 {"max_attempts", options_.verify.max_attempts}};
  j["analog_devices"] = analog_devices();
  if (board_) {
    j["device"] = options_.device;
    j["chip"] = chip_id_;
    j["board"] = {{"model", board_->info().model}, {"serial", board_->info().serial}};
    j["free_cells_left"] = cells_->free_cells();
    j["board_settings"] = instruments::settings_to_json(settings_);
  }
  return j;
}

std::string NetworkStores::save() const {
  StateWriter out;
  out.pod<std::uint32_t>(static_cast<std::uint32_t>(stores_.size()));
  out.pod(initial_writes_);
  out.pod(epoch_start_writes_);
  out.pod(steps_);
  out.pod<std::uint32_t>(static_cast<std::uint32_t>(per_epoch_.size()));
  for (const auto& e : per_epoch_) {
    out.pod<std::uint64_t>(e.task.size());
    out.raw(e.task);
    out.pod<std::int32_t>(e.epoch);
    out.pod(e.writes);
  }
  out.pod<std::uint8_t>(cells_ ? 1 : 0);
  if (cells_) {
    auto& c = *cells_;
    out.array(c.writes_per_cell());
    out.array(c.reads_per_cell());
    std::vector<std::uint32_t> bad;
    for (const auto& b : c.new_bad_cells()) bad.push_back(b.cell);
    out.array(bad);
  }
  for (const auto& s : stores_) s->save(out);
  return out.bytes();
}

void NetworkStores::load(const std::string& state, const std::vector<std::span<float>>& effective) {
  StateReader in(state);
  if (in.pod<std::uint32_t>() != stores_.size()) StateReader::fail("layer count differs");
  initial_writes_ = in.pod<std::uint64_t>();
  epoch_start_writes_ = in.pod<std::uint64_t>();
  steps_ = in.pod<std::uint64_t>();
  per_epoch_.resize(in.pod<std::uint32_t>());
  for (auto& e : per_epoch_) {
    e.task = std::string(in.raw(in.pod<std::uint64_t>()));
    e.epoch = in.pod<std::int32_t>();
    e.writes = in.pod<std::uint64_t>();
  }
  const bool had_board = in.pod<std::uint8_t>() != 0;
  if (had_board != (cells_ != nullptr)) StateReader::fail("board placement differs");
  if (cells_) {
    const std::size_t n = cells_->cells();
    auto writes = in.array<std::uint32_t>(n);
    auto reads = in.array<std::uint32_t>(n);
    cells_->restore_counts(std::move(writes), std::move(reads));
    const auto count = in.pod<std::uint64_t>();
    for (std::uint64_t i = 0; i < count; ++i) {
      cells_->mark_bad(in.pod<std::uint32_t>(), "failed_band", "found earlier in this run");
    }
  }
  for (std::size_t l = 0; l < stores_.size(); ++l) stores_[l]->load(in, effective[l]);
  if (!in.at_end()) StateReader::fail("trailing bytes");
}

}  // namespace metaplast::hil
