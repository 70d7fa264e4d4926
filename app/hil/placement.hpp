// The weight stores of one network (one per layer, chosen by --placement), the board they share,
// and their bookkeeping: writes per epoch, reads, checkpoint state, summary.json's "writes" and
// "store" objects.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "app/board/board_session.hpp"
#include "app/hil/board_store.hpp"
#include "app/hil/endurance_report.hpp"
#include "app/hil/weight_store.hpp"

namespace metaplast::hil {

// "--placement": one store name for every layer, or one per layer (input layer first), e.g.
// "virtual,virtual,board". Throws std::invalid_argument naming the option, the count expected
// and the accepted names.
std::vector<StoreKind> parse_placement(const std::string& text, std::size_t layers);

// The default hardware-in-the-loop placement: the output layer on the board, the others virtual.
std::string default_board_placement(std::size_t layers);

// The run's device model: the file if given (devices::load_calibration), else the simulated board's
// defaults (relaxation on).
devices::Calibration run_calibration(const std::filesystem::path& file);

struct StoreOptions {
  std::vector<StoreKind> placement;   // per layer
  Mapping mapping = Mapping::single;  // virtual and board layers (the quantizer must match)
  std::uint64_t seed = 1;             // virtual devices' manufacture and programming draws
  int reread_every = 0;               // re-read the devices every K steps (0: never)
  VerifyOptions verify;
  // Board layers:
  std::string device;                  // board address
  std::filesystem::path chips_dir;     // chip registry; empty: none for sim: addresses,
                                       // ChipRegistry::default_directory() otherwise
  std::string chip;                    // chip id (empty: see NetworkStores)
  std::filesystem::path station;       // its limits are enforced on the board (empty: defaults)
  std::filesystem::path record;        // record the board's frames to this file (empty: none)
  bool calibration_from_file = false;  // then the calibration's chip must be the board's chip
  // Board settings given for this run, by key (TrainConfig::board_settings): applied over the
  // station's by board::session_settings.
  nlohmann::json board_settings = nlohmann::json::object();
};

// The board session of a run's board layers: the board at `device`, the station file's limits and
// board settings (none when `station` is empty) and the run's own board settings
// (TrainConfig::board_settings, by key) over the station's.
board::SessionOptions board_session(const std::string& device, const std::filesystem::path& station,
                                    const nlohmann::json& board_settings);

// The cells holding the weights of the board layers, and the layer of each (row-major indices).
struct PlacedCells {
  std::vector<std::uint32_t> cells;
  std::vector<std::int16_t> layer;
};

class NetworkStores {
 public:
  // layer_weights: weights per layer. Opens and activates the board when a layer is on it.
  // Chip id: options.chip, else the calibration's (if from a file), else derived from the board
  // serial. Throws ChipMismatchError for a calibration of another chip, std::invalid_argument for
  // a board placement without a device or board layers needing more cells than the array has
  // free.
  NetworkStores(const StoreOptions& options, const std::vector<std::size_t>& layer_weights,
                const learning::Quantizer& quantizer, const devices::Calibration& calibration);
  ~NetworkStores();

  std::size_t layers() const { return stores_.size(); }
  WeightStore& layer(std::size_t l) { return *stores_[l]; }
  // The board cells shared by the board layers; null when no layer is on a board.
  BoardCells* board_cells() { return cells_.get(); }
  // Every device of the board layers, layers in order.
  PlacedCells board_placement() const;

  // Initial programming of every layer (counted as "initial" writes, not in any epoch).
  void program_initial(std::size_t l, std::span<const float> wq, std::span<float> effective);
  // After the optimizer step of layer l: program the changed levels (`candidates`: the wq[k] the
  // step changed, see WeightStore::update). Returns how many changed.
  std::size_t after_step(std::size_t l, std::span<const float> wq, std::span<float> effective,
                         std::span<const std::uint32_t> candidates) {
    return stores_[l]->update(wq, effective, candidates);
  }
  // After every layer of a training step: device clock, re-read every K steps. `effective`: per
  // layer.
  void end_step(const std::vector<std::span<float>>& effective);
  // Closes the books of an epoch; returns its writes.
  std::uint64_t end_epoch(const std::string& task, int epoch);

  std::uint64_t total_writes() const;
  std::uint64_t total_reads() const;
  // {"total", "max_per_cell", "per_epoch": [...], "per_epoch_detail": [{task, epoch, writes}],
  //  "initial", "reads", "per_layer": [...], "bad_cells_found", "remapped", "reboots_reconciled"}
  nlohmann::json writes_json() const;
  // {"placement": [...], "device", "chip", "calibration": {...}, "levels": [...]}
  nlohmann::json store_json() const;
  // The board settings in force (the built-in ones when no layer is on a board).
  const instruments::BoardSettings& board_settings() const { return settings_; }
  // Programming operations per device of every non-ideal layer (every layer if all are ideal).
  std::vector<std::uint32_t> device_writes() const;
  // The same per kind of device, never mixed: "board" (real pulses), "virtual" (simulated
  // pulses), "ideal" (level changes; only when every layer is ideal), layers in order.
  std::vector<DeviceWrites> device_writes_by_kind() const;
  std::size_t analog_devices() const;

  std::string save() const;
  // Restores a save() and sets the effective weights (board: re-reads and reprograms out of
  // band). Throws std::runtime_error if the state does not match the placement.
  void load(const std::string& state, const std::vector<std::span<float>>& effective);

 private:
  StoreOptions options_;
  std::unique_ptr<instruments::ArrayBoard> board_;
  instruments::BoardSettings settings_;
  std::unique_ptr<BoardCells> cells_;
  std::vector<std::unique_ptr<WeightStore>> stores_;
  std::vector<std::pair<std::size_t, const BoardStore*>> board_layers_;  // (layer, its store)
  std::string chip_id_;
  nlohmann::json calibration_identity_;
  std::vector<float> levels_;
  std::uint64_t initial_writes_ = 0, epoch_start_writes_ = 0;
  std::uint64_t steps_ = 0;
  struct EpochWrites {
    std::string task;
    int epoch = 0;
    std::uint64_t writes = 0;
  };
  std::vector<EpochWrites> per_epoch_;
};

}  // namespace metaplast::hil
