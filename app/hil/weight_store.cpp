#include "app/hil/weight_store.hpp"

#include <algorithm>
#include <cmath>

namespace metaplast::hil {

std::string_view to_string(StoreKind kind) {
  switch (kind) {
    case StoreKind::ideal:
      return "ideal";
    case StoreKind::virtual_devices:
      return "virtual";
    case StoreKind::board:
      return "board";
  }
  return "?";
}

StoreKind parse_store_kind(std::string_view name) {
  if (name == "ideal") return StoreKind::ideal;
  if (name == "virtual") return StoreKind::virtual_devices;
  if (name == "board") return StoreKind::board;
  throw std::invalid_argument("--placement: unknown weight store '" + std::string(name) +
                              "': use ideal, virtual or board");
}

ConductanceMapping::ConductanceMapping(const sim::Calibration& calibration)
    : medians_us_(calibration.level_medians_us()) {
  lcs_us_ = medians_us_.front();
  scale_ = 2.0 / (medians_us_.back() - lcs_us_);
  for (double g : medians_us_) levels_.push_back(weight(g));
  levels_.front() = -1.0f;  // exact ends, whatever the rounding
  levels_.back() = 1.0f;
}

float ConductanceMapping::weight(double conductance_us) const {
  return static_cast<float>(-1.0 + (conductance_us - lcs_us_) * scale_);
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
  program(changed_, effective);
}

std::size_t WeightStore::update(std::span<const float> wq, std::span<float> effective) {
  changed_.clear();
  const auto levels = quantizer_.levels();
  for (std::size_t k = 0; k < levels_.size(); ++k) {
    if (wq[k] != levels[levels_[k]]) {
      levels_[k] = static_cast<std::uint16_t>(quantizer_.level_index(wq[k]));
      changed_.push_back(static_cast<std::uint32_t>(k));
    }
  }
  if (!changed_.empty()) program(changed_, effective);
  return changed_.size();
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
                           const sim::Calibration& calibration, std::uint64_t seed,
                           VerifyOptions verify)
    : WeightStore(quantizer, weights),
      model_(calibration),
      mapping_(calibration),
      verify_(verify),
      rng_(seed),
      hcs_z_(weights),
      lcs_z_(weights),
      programmed_us_(weights, static_cast<float>(calibration.lcs.median_conductance_us)),
      step_us_(weights, 0.0f),
      programmed_at_(weights, 0),
      last_read_us_(weights, 0.0f),
      in_hcs_(weights, 0),
      writes_per_device_(weights, 0) {
  if (quantizer.size() != mapping_.levels().size()) {
    throw std::invalid_argument("virtual weight store: the quantizer has " +
                                std::to_string(quantizer.size()) + " levels, the calibration " +
                                std::to_string(mapping_.levels().size()));
  }
  for (std::size_t k = 0; k < weights; ++k) {
    hcs_z_[k] = static_cast<float>(rng_.normal());
    lcs_z_[k] = static_cast<float>(rng_.normal());
  }
}

sim::CellTraits VirtualStore::traits(std::size_t k) const {
  sim::CellTraits t;
  t.hcs_d2d_z = hcs_z_[k];
  t.lcs_d2d_z = lcs_z_[k];
  return t;
}

double VirtualStore::true_conductance_us(std::size_t k) const {
  const double elapsed_s = (step_ - programmed_at_[k]) * kDeviceSecondsPerStep;
  return model_.relaxed_us(programmed_us_[k], step_us_[k], elapsed_s);
}

void VirtualStore::program(std::span<const std::uint32_t> indices, std::span<float> effective) {
  const auto& hcs = model_.calibration().hcs_levels;
  for (std::uint32_t k : indices) {
    const std::size_t level = levels_[k];
    const double target = mapping_.target_us(level);
    const auto in_band = [&](double g) {
      return level == 0 ? g <= target + verify_.band_us : std::abs(g - target) <= verify_.band_us;
    };
    const sim::CellTraits t = traits(k);
    double g = model_.draw_read_us(true_conductance_us(k), rng_);
    ++reads_;
    std::uint32_t attempts = 0;
    while (!in_band(g) && attempts < verify_.max_attempts) {
      double g0;
      if (level == 0 || g > target + verify_.band_us) {
        g0 = model_.draw_lcs_us(t, rng_);
        in_hcs_[k] = 0;
      } else {
        g0 = model_.draw_hcs_us(hcs[level - 1].icc_ua, t, rng_);
        if (in_hcs_[k]) g0 = std::max(g0, true_conductance_us(k));
        in_hcs_[k] = 1;
      }
      programmed_us_[k] = static_cast<float>(g0);
      step_us_[k] = static_cast<float>(model_.draw_relaxation_step_us(g0, rng_));
      programmed_at_[k] = step_;
      ++attempts;
      g = model_.draw_read_us(true_conductance_us(k), rng_);
      ++reads_;
    }
    last_read_us_[k] = static_cast<float>(g);
    effective[k] = mapping_.weight(last_read_us_[k]);  // as a checkpoint restores it
    writes_per_device_[k] += attempts;
    writes_ += attempts;
  }
}

void VirtualStore::refresh(std::span<float> effective) {
  for (std::size_t k = 0; k < levels_.size(); ++k) {
    const double g = model_.draw_read_us(true_conductance_us(k), rng_);
    last_read_us_[k] = static_cast<float>(g);
    effective[k] = mapping_.weight(last_read_us_[k]);  // as a checkpoint restores it
  }
  reads_ += levels_.size();
}

void VirtualStore::save_devices(StateWriter& out) const {
  for (std::uint64_t word : rng_.state()) out.pod(word);
  out.array(programmed_us_);
  out.array(step_us_);
  out.array(programmed_at_);
  out.array(last_read_us_);
  out.array(in_hcs_);
  out.array(writes_per_device_);
}

void VirtualStore::load_devices(StateReader& in, std::span<float> effective) {
  sim::RandomStream::State state;
  for (auto& word : state) word = in.pod<std::uint64_t>();
  rng_.set_state(state);
  const std::size_t n = levels_.size();
  programmed_us_ = in.array<float>(n);
  step_us_ = in.array<float>(n);
  programmed_at_ = in.array<std::uint32_t>(n);
  last_read_us_ = in.array<float>(n);
  in_hcs_ = in.array<std::uint8_t>(n);
  writes_per_device_ = in.array<std::uint32_t>(n);
  for (std::size_t k = 0; k < n; ++k) effective[k] = mapping_.weight(last_read_us_[k]);
}

}  // namespace metaplast::hil
