#include "app/hil/weight_store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <type_traits>

#include "app/util/thread_pool.hpp"
#include "common/enum_names.hpp"
#include "protocols/verify_rule.hpp"

namespace metaplast::hil {

namespace {

constexpr auto kStoreKindNames = common::enum_table<StoreKind>({
    {StoreKind::ideal, "ideal"},
    {StoreKind::virtual_devices, "virtual"},
    {StoreKind::board, "board"},
});

constexpr auto kMappingNames = common::enum_table<Mapping>({
    {Mapping::single, "single"},
    {Mapping::differential, "differential"},
});

}  // namespace

std::string_view to_string(StoreKind kind) { return common::enum_name(kStoreKindNames, kind); }

StoreKind parse_store_kind(std::string_view name) {
  return common::parse_enum(kStoreKindNames, name, "--placement: unknown weight store");
}

std::string_view to_string(Mapping mapping) { return common::enum_name(kMappingNames, mapping); }

Mapping parse_mapping(std::string_view name) {
  return common::parse_enum(kMappingNames, name, "--mapping: unknown weight-to-device mapping",
                            "single (one device per weight) or differential (a pair G+ - G- per "
                            "weight)");
}

ConductanceMapping::ConductanceMapping(const devices::Calibration& calibration, Mapping mapping)
    : mapping_(mapping), medians_us_(calibration.level_medians_us()) {
  lcs_us_ = medians_us_.front();
  if (mapping_ == Mapping::single) {
    scale_ = 2.0 / (medians_us_.back() - lcs_us_);
    for (double g : medians_us_) levels_.push_back(weight(g));
    levels_.front() = -1.0f;  // exact ends, whatever the rounding
    levels_.back() = 1.0f;
    return;
  }
  // From the medians as the stores keep reads (float), so that a noise-free pair reads back
  // exactly its level.
  scale_ = 1.0 / (static_cast<double>(static_cast<float>(medians_us_.back())) -
                  static_cast<float>(lcs_us_));
  const std::size_t top = medians_us_.size() - 1;
  for (std::size_t level = 0; level <= 2 * top; ++level) {
    const float reads[2] = {static_cast<float>(medians_us_[device_level(level, 0)]),
                            static_cast<float>(medians_us_[device_level(level, 1)])};
    levels_.push_back(weight_of(reads));
  }
  levels_.front() = -1.0f;
  levels_[top] = 0.0f;
  levels_.back() = 1.0f;
}

std::size_t ConductanceMapping::device_level(std::size_t level, std::size_t j) const {
  if (mapping_ == Mapping::single) return level;
  const std::size_t zero = medians_us_.size() - 1;  // weight level with both devices at the LCS
  if (j == 0) return level > zero ? level - zero : 0;
  return level < zero ? zero - level : 0;
}

float ConductanceMapping::weight(double conductance_us) const {
  return static_cast<float>(-1.0 + (conductance_us - lcs_us_) * scale_);
}

float ConductanceMapping::weight_of(const float* conductance_us) const {
  if (mapping_ == Mapping::single) return weight(conductance_us[0]);
  return static_cast<float>((static_cast<double>(conductance_us[0]) - conductance_us[1]) * scale_);
}

std::string_view mapping_formula(Mapping mapping) {
  return mapping == Mapping::single
             ? "single device: w = -1 + 2 (G - G_LCS) / (G_top - G_LCS)"
             : "differential pair: w = (G+ - G-) / (G_top - G_LCS), one device at the LCS";
}

// ---------------------------------------------------------------------------------------------

WeightStore::WeightStore(const learning::Quantizer& quantizer, std::size_t weights)
    : quantizer_(quantizer), levels_(weights, 0) {
  changed_.reserve(weights);
}

void WeightStore::program_all(std::span<const float> wq, std::span<float> effective) {
  changed_.resize(levels_.size());
  for (std::size_t k = 0; k < levels_.size(); ++k) {
    levels_[k] = static_cast<std::uint16_t>(quantizer_.level_index(wq[k]));
    changed_[k] = static_cast<std::uint32_t>(k);
  }
  compare_all_next_ = false;
  program(changed_, effective);
}

bool WeightStore::take_level(std::size_t k, float wq) {
  if (wq == quantizer_.level(levels_[k])) return false;
  levels_[k] = static_cast<std::uint16_t>(quantizer_.level_index(wq));
  return true;
}

std::size_t WeightStore::program_changes(std::span<float> effective) {
  compare_all_next_ = false;
  if (!changed_.empty()) program(changed_, effective);
  return changed_.size();
}

std::size_t WeightStore::update(std::span<const float> wq, std::span<float> effective) {
  changed_.clear();
  const std::size_t size = levels_.size();
  // The scan runs over every weight: split it over the hot-path threads, each range collecting its
  // changes, then concatenated in order (same list for any thread count).
  const int threads = size >= 65536 ? util::compute_threads() : 1;
  const std::size_t parts = static_cast<std::size_t>(threads);
  if (changed_parts_.size() < parts) changed_parts_.resize(parts);
  util::parallel_ranges(parts, threads, [&](std::size_t first, std::size_t last) {
    for (std::size_t part = first; part < last; ++part) {
      auto& changed = changed_parts_[part];
      changed.clear();
      for (std::size_t k = size * part / parts; k < size * (part + 1) / parts; ++k) {
        if (take_level(k, wq[k])) changed.push_back(static_cast<std::uint32_t>(k));
      }
    }
  });
  for (std::size_t part = 0; part < parts; ++part) {
    changed_.insert(changed_.end(), changed_parts_[part].begin(), changed_parts_[part].end());
  }
  return program_changes(effective);
}

std::size_t WeightStore::update(std::span<const float> wq, std::span<float> effective,
                                std::span<const std::uint32_t> candidates) {
  if (compare_all_next_) return update(wq, effective);
  changed_.clear();
  for (const std::uint32_t k : candidates) {
    if (k >= levels_.size()) {
      throw std::invalid_argument("weight store: changed weight " + std::to_string(k) +
                                  " of a store of " + std::to_string(levels_.size()));
    }
    if (take_level(k, wq[k])) changed_.push_back(k);
  }
  return program_changes(effective);
}

void WeightStore::save(StateWriter& out) const {
  out.pod(static_cast<std::uint8_t>(kind()));
  out.array(levels_);
  out.pod(writes_);
  out.pod(reads_);
  out.pod(step_);
  save_devices(out);
}

void WeightStore::load(StateReader& in, std::span<float> effective) {
  if (in.pod<std::uint8_t>() != static_cast<std::uint8_t>(kind())) {
    StateReader::fail("a layer was on another kind of weight store");
  }
  levels_ = in.array<std::uint16_t>(levels_.size());
  writes_ = in.pod<std::uint64_t>();
  reads_ = in.pod<std::uint64_t>();
  step_ = in.pod<std::uint32_t>();
  load_devices(in, effective);
  compare_all_next_ = true;
}

// ---------------------------------------------------------------------------------------------

IdealStore::IdealStore(const learning::Quantizer& quantizer, std::size_t weights)
    : WeightStore(quantizer, weights), writes_per_weight_(weights, 0) {}

void IdealStore::program(std::span<const std::uint32_t> indices, std::span<float> effective) {
  for (std::uint32_t k : indices) {
    effective[k] = quantizer_.level(levels_[k]);
    ++writes_per_weight_[k];
  }
  writes_ += indices.size();
}

void IdealStore::save_devices(StateWriter& out) const { out.array(writes_per_weight_); }

void IdealStore::load_devices(StateReader& in, std::span<float> effective) {
  writes_per_weight_ = in.array<std::uint32_t>(levels_.size());
  for (std::size_t k = 0; k < levels_.size(); ++k) effective[k] = quantizer_.level(levels_[k]);
}

// ---------------------------------------------------------------------------------------------

VirtualStore::VirtualStore(const learning::Quantizer& quantizer, std::size_t weights,
                           const devices::Calibration& calibration, std::uint64_t seed,
                           VerifyOptions verify, Mapping mapping)
    : WeightStore(quantizer, weights),
      model_(calibration),
      mapping_(calibration, mapping),
      verify_(verify),
      seed_(seed) {
  if (quantizer.size() != mapping_.levels().size()) {
    throw std::invalid_argument("virtual weight store: the quantizer has " +
                                std::to_string(quantizer.size()) + " levels, the calibration (" +
                                std::string(to_string(mapping)) + " mapping) " +
                                std::to_string(mapping_.levels().size()));
  }
  const std::size_t n = weights * mapping_.devices_per_weight();
  Device fresh;
  fresh.programmed_us = static_cast<float>(calibration.lcs.median_conductance_us);
  devices_.assign(n, fresh);
  for (const auto& level : calibration.hcs_levels) {
    set_parameters_.push_back(model_.hcs_draw_parameters(level.icc_ua));
  }
  devices::RandomStream manufacture(seed, devices::NormalMethod::ziggurat);
  for (Device& device : devices_) {
    device.hcs_z = static_cast<float>(manufacture.normal());
    device.lcs_z = static_cast<float>(manufacture.normal());
  }
}

std::vector<std::uint32_t> VirtualStore::device_writes() const {
  std::vector<std::uint32_t> writes(devices_.size());
  for (std::size_t d = 0; d < devices_.size(); ++d) writes[d] = devices_[d].writes;
  return writes;
}

float VirtualStore::effective_weight(std::size_t k) const {
  // From the stored (float) reads, as a checkpoint restores it.
  const std::size_t per_weight = mapping_.devices_per_weight();
  float reads[2];
  for (std::size_t j = 0; j < per_weight; ++j) reads[j] = devices_[k * per_weight + j].last_read_us;
  return mapping_.weight_of(reads);
}

devices::RandomStream VirtualStore::stream(std::size_t d) const {
  using devices::RandomStream;
  return RandomStream(
      RandomStream::mix64(
          seed_ ^ RandomStream::mix64(calls_ * RandomStream::kGolden + RandomStream::mix64(d + 1))),
      devices::NormalMethod::ziggurat);
}

double VirtualStore::true_conductance_us(std::size_t d) const {
  const Device& device = devices_[d];
  const std::uint32_t elapsed_steps = step_ - device.programmed_at;
  if (elapsed_steps < relaxation_by_steps_.size()) {
    return model_.relaxed_us(device.programmed_us, device.step_us,
                             relaxation_by_steps_[elapsed_steps]);
  }
  return model_.relaxed_us(device.programmed_us, device.step_us,
                           elapsed_steps * kDeviceSecondsPerStep);
}

void VirtualStore::prepare_relaxation() {
  while (relaxation_by_steps_.size() <= step_) {
    const auto elapsed_steps = static_cast<std::uint32_t>(relaxation_by_steps_.size());
    relaxation_by_steps_.push_back(
        model_.relaxation_factors(elapsed_steps * kDeviceSecondsPerStep));
  }
}

VirtualStore::Counts VirtualStore::program_device(std::size_t d, std::size_t level,
                                                  devices::RandomStream& rng) {
  const auto band = protocols::verify_band(level, mapping_.target_us(level), verify_.band_us);
  Device& device = devices_[d];
  Counts counts;
  const auto read = [&] {
    ++counts.reads;
    return model_.draw_read_us(true_conductance_us(d), rng);
  };
  const auto pulse = [&](protocols::PulseKind kind) {
    double g0;
    if (kind == protocols::PulseKind::kReset) {
      g0 = model_.draw_lcs_us(device.lcs_z, rng);
      device.in_hcs = 0;
    } else {
      g0 = model_.draw_hcs_us(set_parameters_[level - 1], device.hcs_z, rng);
      if (device.in_hcs) g0 = std::max(g0, true_conductance_us(d));
      device.in_hcs = 1;
    }
    device.programmed_us = static_cast<float>(g0);
    device.step_us = static_cast<float>(model_.draw_relaxation_step_us(g0, rng));
    device.programmed_at = step_;
  };
  const auto outcome = protocols::verify_cell(band, verify_.max_attempts, read, pulse);
  device.last_read_us = static_cast<float>(outcome.final_us);
  device.level = static_cast<std::uint16_t>(level);
  device.writes += outcome.attempts;
  counts.writes = outcome.attempts;
  return counts;
}

namespace {

constexpr std::uint64_t kStreamsMarker = 0x6d6574617374726dULL;  // "metastrm"

// How many changed weights ahead program() prefetches their device records.
constexpr std::size_t kPrefetchAhead = 8;

// The hot-path threads for `count` devices of work (small batches run inline).
int device_threads(std::size_t count) { return count >= 256 ? util::compute_threads() : 1; }

}  // namespace

void VirtualStore::program(std::span<const std::uint32_t> indices, std::span<float> effective) {
  const std::size_t per_weight = mapping_.devices_per_weight();
  ++calls_;
  prepare_relaxation();
  std::atomic<std::uint64_t> writes{0}, reads{0};
  util::parallel_ranges(indices.size(), device_threads(indices.size()),
                        [&](std::size_t begin, std::size_t end) {
    Counts range;
    for (std::size_t i = begin; i < end; ++i) {
      const std::uint32_t k = indices[i];
      // The changed weights are scattered: ask for the records a few weights ahead (a device's
      // work is far shorter than a miss to memory).
      if (i + kPrefetchAhead < end) {
        const std::uint32_t ahead = indices[i + kPrefetchAhead];
        __builtin_prefetch(&devices_[ahead * per_weight], 1);
        __builtin_prefetch(&effective[ahead], 1);
      }
      for (std::size_t j = 0; j < per_weight; ++j) {
        const std::size_t d = k * per_weight + j;
        const std::size_t level = mapping_.device_level(levels_[k], j);
        if (devices_[d].level == level) continue;
        devices::RandomStream rng = stream(d);
        const Counts one = program_device(d, level, rng);
        range.writes += one.writes;
        range.reads += one.reads;
      }
      effective[k] = effective_weight(k);
    }
    writes += range.writes;
    reads += range.reads;
  });
  writes_ += writes.load();
  reads_ += reads.load();
}

void VirtualStore::refresh(std::span<float> effective) {
  ++calls_;
  prepare_relaxation();
  const std::size_t per_weight = mapping_.devices_per_weight();
  util::parallel_ranges(
      levels_.size(), device_threads(devices_.size()), [&](std::size_t begin, std::size_t end) {
        for (std::size_t k = begin; k < end; ++k) {
          for (std::size_t d = k * per_weight; d < (k + 1) * per_weight; ++d) {
            devices::RandomStream rng = stream(d);
            devices_[d].last_read_us =
                static_cast<float>(model_.draw_read_us(true_conductance_us(d), rng));
          }
          effective[k] = effective_weight(k);
        }
      });
  reads_ += devices_.size();
}

void VirtualStore::save_devices(StateWriter& out) const {
  // Four words (a generator state in checkpoints before per-device streams): the seed, the call
  // counter, a marker, 0.
  for (std::uint64_t word : {seed_, calls_, kStreamsMarker, std::uint64_t{0}}) out.pod(word);
  checkpointed_fields([&](auto member) {
    std::vector<std::remove_cvref_t<decltype(devices_.front().*member)>> values;
    values.reserve(devices_.size());
    for (const Device& device : devices_) values.push_back(device.*member);
    out.array(values);
  });
}

void VirtualStore::load_devices(StateReader& in, std::span<float> effective) {
  std::array<std::uint64_t, 4> words;
  for (auto& word : words) word = in.pod<std::uint64_t>();
  if (words[2] == kStreamsMarker) {
    seed_ = words[0];
    calls_ = words[1];
  } else {
    // An older checkpoint (one generator for the store): go on with per-device streams keyed
    // by its state; the devices themselves (below) are restored exactly.
    seed_ = words[0] ^ words[1] ^ words[2] ^ words[3];
    calls_ = 0;
  }
  const std::size_t n = devices();
  checkpointed_fields([&](auto member) {
    using T = std::remove_cvref_t<decltype(devices_.front().*member)>;
    const std::vector<T> values = in.array<T>(n);
    for (std::size_t d = 0; d < n; ++d) devices_[d].*member = values[d];
  });
  const std::size_t per_weight = mapping_.devices_per_weight();
  for (std::size_t k = 0; k < levels_.size(); ++k) {
    for (std::size_t j = 0; j < per_weight; ++j) {
      devices_[k * per_weight + j].level =
          static_cast<std::uint16_t>(mapping_.device_level(levels_[k], j));
    }
    effective[k] = effective_weight(k);
  }
}

}  // namespace metaplast::hil
