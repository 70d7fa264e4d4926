// A training run with its weights on devices: the training loop (learning::train) with the
// hardware in the loop's hooks (docs/architecture.md, "The training loop and its hooks"):
//   weights    hil::NetworkStores (ideal, virtual or board layers, --placement) as the loop's
//              WeightBackend; the quantizer levels from the device calibration once devices are
//              involved;
//   board      the run's journal (journal.jsonl), reconciliation on resume, an HDF5 snapshot and
//              conductances.csv per epoch, cell_writes.csv and the board's counters in
//              summary.json's "writes" (only when a layer is on a board);
//   reports    endurance.csv/.gp/.png and memory.json at the end.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "app/learning/train_config.hpp"
#include "app/learning/trainer.hpp"
#include "app/learning/training_hooks.hpp"
#include "app/live/live_feed.hpp"

namespace metaplast::hil {

// learning::train's contract (the summary, the run folder, resume), with `observers` called
// after the hardware's own (a script's callbacks; not owned), and the run published to `live`
// when given (hil::LiveTraining: docs/live.md). Throws what the
// stores throw on a board that cannot be opened or does not fit (ChipMismatchError,
// std::invalid_argument) beside what learning::train throws.
nlohmann::json run_training(const learning::TrainConfig& config,
                            const std::filesystem::path& out_dir, bool resume,
                            const learning::RunControl& control = {},
                            const std::vector<learning::TrainingObserver*>& observers = {},
                            live::LiveFeed* live = nullptr);

}  // namespace metaplast::hil
