// Weight stores (shared/METHOD.md section 5): where a layer's quantized weights W_Q live, and
// what the forward pass sees of them (the "effective" weights). One interface, three kinds:
//   ideal    W_Q exactly (the software baseline; bit for bit the numbers of a plain run),
//   virtual  one simulated device per weight, drawn from the calibrated device model
//            (sim::DeviceModel) when programmed, read noise on every read,
//   board    cells of an array board through instruments::ArrayBoard (board_store.hpp).
// A device is programmed only when its weight's quantized level changes; every programming pulse
// (verify retries included) counts against that device's endurance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/learning/quantizer.hpp"
#include "sim/calibration.hpp"
#include "sim/device_model.hpp"
#include "sim/random.hpp"

namespace metaplast::hil {

enum class StoreKind { ideal, virtual_devices, board };
std::string_view to_string(StoreKind kind);  // "ideal", "virtual", "board"
// Throws std::invalid_argument naming the accepted kinds.
StoreKind parse_store_kind(std::string_view name);

// Single-device mapping: weight = -1 + 2 (G - G_lcs) / (G_top - G_lcs), so the calibrated level
// medians (LCS, HCS 1..N) map onto the quantizer's levels Q_0 = -1 < ... < Q_N = +1 (non-uniform
// when the medians are).
class ConductanceMapping {
 public:
  explicit ConductanceMapping(const sim::Calibration& calibration);
  float weight(double conductance_us) const;
  // The quantizer levels Q_i: weight(median_i) for the calibration's level medians.
  const std::vector<float>& levels() const { return levels_; }
  // Program-and-verify target conductance of level i (its median).
  double target_us(std::size_t level) const { return medians_us_[level]; }

 private:
  std::vector<double> medians_us_;
  std::vector<float> levels_;
  double lcs_us_ = 0, scale_ = 0;
};

// Little binary serialiser for the checkpoint's store state (host byte order).
class StateWriter {
 public:
  template <class T>
  void pod(const T& value) {
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  template <class T>
  void array(const std::vector<T>& values) {
    pod<std::uint64_t>(values.size());
    bytes_.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// Throws std::runtime_error("checkpoint store state: ...") on truncated or mismatched data.
class StateReader {
 public:
  explicit StateReader(std::string_view bytes) : bytes_(bytes) {}
  template <class T>
  T pod() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  template <class T>
  std::vector<T> array(std::size_t expected_size) {
    const auto n = pod<std::uint64_t>();
    if (n != expected_size)
      fail("size " + std::to_string(n) + ", expected " + std::to_string(expected_size));
    need(n * sizeof(T));
    std::vector<T> values(n);
    std::memcpy(values.data(), bytes_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return values;
  }
  bool at_end() const { return at_ == bytes_.size(); }
  [[noreturn]] static void fail(const std::string& what) {
    throw std::runtime_error("checkpoint store state: " + what +
                             "; the checkpoint does not match this placement");
  }

 private:
  void need(std::size_t n) const {
    if (bytes_.size() - at_ < n) fail("truncated");
  }
  std::string_view bytes_;
  std::size_t at_ = 0;
};

// The quantized weights of one layer on one kind of device.
class WeightStore {
 public:
  WeightStore(const learning::Quantizer& quantizer, std::size_t weights);
  virtual ~WeightStore() = default;
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  virtual StoreKind kind() const = 0;
  std::size_t size() const { return levels_.size(); }

  // Programs every weight to the level of wq[k] (each wq[k] must be one of the quantizer's
  // levels) and writes what the forward pass sees into effective[k].
  void program_all(std::span<const float> wq, std::span<float> effective);
  // After an optimizer step: programs exactly the weights whose quantized level differs from the
  // stored one, in one batch, and updates their effective weights. Returns how many.
  std::size_t update(std::span<const float> wq, std::span<float> effective);
  // Reads every device again (relaxation and read noise show up); ideal: nothing to do.
  virtual void refresh(std::span<float> /*effective*/) {}
  // Advances the device clock (virtual devices relax with it) by one training step.
  void tick() { ++step_; }

  // Programming operations (SET or RESET pulses, verify retries included) and reads, in total
  // and per device (ideal: one operation per level change).
  std::uint64_t writes() const { return writes_; }
  std::uint64_t reads() const { return reads_; }
  virtual std::vector<std::uint32_t> device_writes() const = 0;
  std::span<const std::uint16_t> levels() const { return levels_; }

  // State for a checkpoint, and its restoration (which also sets the effective weights).
  void save(StateWriter& out) const;
  void load(StateReader& in, std::span<float> effective);

 protected:
  // Programs the weights `indices` to levels_[k] (already updated) and sets their effective
  // weights; adds to writes_/reads_.
  virtual void program(std::span<const std::uint32_t> indices, std::span<float> effective) = 0;
  virtual void save_devices(StateWriter& out) const = 0;
  virtual void load_devices(StateReader& in, std::span<float> effective) = 0;

  learning::Quantizer quantizer_;
  std::vector<std::uint16_t> levels_;
  std::uint64_t writes_ = 0, reads_ = 0;
  std::uint32_t step_ = 0;
  std::vector<std::uint32_t> changed_;
};

// W_Q exactly.
class IdealStore final : public WeightStore {
 public:
  IdealStore(const learning::Quantizer& quantizer, std::size_t weights);
  StoreKind kind() const override { return StoreKind::ideal; }
  std::vector<std::uint32_t> device_writes() const override { return writes_per_weight_; }

 private:
  void program(std::span<const std::uint32_t> indices, std::span<float> effective) override;
  void save_devices(StateWriter& out) const override;
  void load_devices(StateReader& in, std::span<float> effective) override;
  std::vector<std::uint32_t> writes_per_weight_;
};

// Program-and-verify parameters shared by the virtual and the board stores (the board's own
// defaults: instruments::ProgramOptions).
struct VerifyOptions {
  double band_us = 5.0;             // pass when |G - target| <= band (LCS: G <= target + band)
  std::uint32_t max_attempts = 20;  // pulses per device per programming
};

// Simulated device time per training step, for relaxation (virtual devices).
inline constexpr double kDeviceSecondsPerStep = 0.05;

// One virtual device per weight, from the calibrated model: device-to-device offsets drawn at
// construction from `seed`, program-and-verify as the simulated board's firmware does it (RESET
// when above the band or for the LCS, else SET at the level's compliance current; a read after
// every pulse), read noise on every read, relaxation with the device clock.
class VirtualStore final : public WeightStore {
 public:
  VirtualStore(const learning::Quantizer& quantizer, std::size_t weights,
               const sim::Calibration& calibration, std::uint64_t seed, VerifyOptions verify = {});
  StoreKind kind() const override { return StoreKind::virtual_devices; }
  std::vector<std::uint32_t> device_writes() const override { return writes_per_device_; }
  void refresh(std::span<float> effective) override;

 private:
  void program(std::span<const std::uint32_t> indices, std::span<float> effective) override;
  void save_devices(StateWriter& out) const override;
  void load_devices(StateReader& in, std::span<float> effective) override;
  sim::CellTraits traits(std::size_t k) const;
  double true_conductance_us(std::size_t k) const;

  sim::DeviceModel model_;
  ConductanceMapping mapping_;
  VerifyOptions verify_;
  sim::RandomStream rng_;
  std::vector<float> hcs_z_, lcs_z_;            // per device, fixed at manufacture
  std::vector<float> programmed_us_, step_us_;  // last programmed G0 and its relaxation step
  std::vector<std::uint32_t> programmed_at_;    // device clock (steps) of the last programming
  std::vector<float> last_read_us_;
  std::vector<std::uint8_t> in_hcs_;  // a SET on an HCS device keeps the larger G (sim/chip)
  std::vector<std::uint32_t> writes_per_device_;
};

}  // namespace metaplast::hil
