// The state of a training run between two epochs, and its file: everything needed to continue a
// killed run to exactly the numbers an uninterrupted run gives.
//
// File layout (little-endian, as the host): magic "MPLCKPT\0", u32 format version, u64 config hash,
// u64 payload size, u64 checksum, payload. The checksum is FNV-1a 64 over the magic, version,
// config hash, payload size and the payload (versions 1 and 2: over the payload only). Written by
// common::write_file_atomically with fsync, so a reader sees the previous or the new checkpoint,
// never a mix (docs/run-records.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/learning/gradient_projection.hpp"
#include "app/learning/metaplastic_optimizer.hpp"
#include "app/learning/network.hpp"

namespace metaplast::learning {

// Version 2 adds the weight stores' state (version 1 files are still read, with no store state).
// Version 3 extends the checksum over the header (versions 1 and 2 are still read).
// Version 4 adds the selective rules' per-weight consolidation state, one float vector per
// optimizer tensor after the store state (empty for the other rules; older files read as empty).
// Version 5 adds the gradient projection's protected spaces, one per layer after the consolidation
// state (none when the projection is off or no task has ended; older files read as none).
inline constexpr std::uint32_t kCheckpointFormatVersion = 5;

// One line of metrics.csv.
struct MetricRow {
  std::string task_trained;
  int epoch = 0;  // 1-based, within task_trained
  std::string task_evaluated;
  std::string split;  // "test" or "validation"
  double accuracy = 0.0;
  double loss = 0.0;
  bool operator==(const MetricRow&) const = default;
};

struct TrainingState {
  // Next epoch to run: epoch `epochs_done` (0-based) of task `task_index`. A finished task is
  // stored as (task_index + 1, 0).
  std::size_t task_index = 0;
  std::size_t epochs_done = 0;
  std::string rng_state;  // std::mt19937_64 in its text form
  double train_seconds = 0.0;
  std::uint64_t samples_trained = 0;
  std::vector<std::vector<float>> hidden_weights;  // per layer, W_H
  std::int64_t optimizer_steps = 0;
  std::vector<AdamMoments> optimizer_moments;
  std::vector<BatchNormState> live_batchnorm;
  // Per task (in task order): the BatchNorm state saved at the end of that task, if finished.
  std::vector<std::optional<std::vector<BatchNormState>>> saved_batchnorm;
  std::vector<MetricRow> metrics;
  // The weight backend's state (WeightBackend::save: placement, per-device counts,
  // conductances), opaque here; empty when every layer is ideal.
  std::string store_state;
  // The gradient projection's protected spaces, per layer; empty when it is off.
  std::vector<ProtectedSpace> protected_spaces;
};

// 64-bit FNV-1a: a cheap content hash for the config (not a security property).
std::uint64_t fnv1a64(std::string_view bytes);
// The same, continued from the hash `prior` of the bytes before.
std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t prior);

// Writes `state` to `file` atomically. Throws std::runtime_error naming the file on I/O errors
// (a full disk included; the temporary file is removed).
void save_checkpoint(const std::filesystem::path& file, std::uint64_t config_hash,
                     const TrainingState& state);

// Reads a checkpoint. Throws std::runtime_error naming the file when it is missing, truncated,
// corrupt (hash mismatch), of another format version, or written for another config (hash differs
// from `expected_config_hash`).
TrainingState load_checkpoint(const std::filesystem::path& file,
                              std::uint64_t expected_config_hash);

// What load_checkpoint does once the file is read, on its bytes (`file` is only used in
// messages). Same errors; every count is bounded by the bytes left before anything is allocated.
TrainingState parse_checkpoint(std::string_view bytes, const std::filesystem::path& file,
                               std::uint64_t expected_config_hash);

// A checksum proves a checkpoint undamaged, not that it belongs to this run: checks that `state`
// fits `network` (layer count and sizes, finite weights, BatchNorm widths), has one saved-BatchNorm
// slot per task and a position just after an epoch of tasks x epochs_per_task. Throws
// std::runtime_error naming the file and the first misfit.
void check_checkpoint_fits(const TrainingState& state, const std::filesystem::path& file,
                           const Network& network, std::size_t tasks, std::size_t epochs_per_task);

}  // namespace metaplast::learning
