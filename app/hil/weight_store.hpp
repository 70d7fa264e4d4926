// Weight stores (docs/architecture.md; device model: docs/calibration.md): where a layer's
// quantized weights W_Q live, and what the forward pass sees of them (the "effective" weights). One
// interface, three kinds:
//   ideal    W_Q exactly (the software baseline; bit for bit the numbers of a plain run),
//   virtual  one simulated device per weight, drawn from the calibrated device model
//            (devices::DeviceModel) when programmed, read noise on every read,
//   board    cells of an array board through instruments::ArrayBoard (board_store.hpp).
// A device is programmed only when its weight's quantized level changes; every programming pulse
// (verify retries included) counts against that device's endurance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/learning/quantizer.hpp"
#include "common/byte_io.hpp"
#include "devices/calibration.hpp"
#include "devices/device_model.hpp"
#include "devices/random.hpp"

namespace metaplast::hil {

enum class StoreKind { ideal, virtual_devices, board };
std::string_view to_string(StoreKind kind);  // "ideal", "virtual", "board"
// Throws std::invalid_argument naming the accepted kinds.
StoreKind parse_store_kind(std::string_view name);

// How a weight sits on devices (docs/calibration.md; results: docs/results.md):
//   single        one device per weight, w = -1 + 2 (G - G_lcs) / (G_top - G_lcs): the calibrated
//                 level medians (LCS, HCS 1..N) map onto Q_0 = -1 < ... < Q_N = +1 (non-uniform
//                 when the medians are); N + 1 levels (9 by default).
//   differential  a pair (G+, G-) per weight, w = (G+ - G-) / (G_top - G_lcs). The levels are the
//                 differences with one device at the LCS: -(G_i - G_lcs), ..., 0, ...,
//                 +(G_i - G_lcs); 2N + 1 levels (17 by default). Level 0 has both at the LCS.
enum class Mapping { single, differential };
std::string_view to_string(Mapping mapping);  // "single", "differential"
// Throws std::invalid_argument naming --mapping and the accepted names.
Mapping parse_mapping(std::string_view name);
inline std::size_t devices_per_weight(Mapping mapping) {
  return mapping == Mapping::differential ? 2 : 1;
}
// The weight formula, for summary.json's "store".
std::string_view mapping_formula(Mapping mapping);

class ConductanceMapping {
 public:
  explicit ConductanceMapping(const devices::Calibration& calibration,
                              Mapping mapping = Mapping::single);
  Mapping mapping() const { return mapping_; }
  std::size_t devices_per_weight() const { return hil::devices_per_weight(mapping_); }
  // The quantizer levels Q_i (a noise-free device read at its level medians gives exactly these).
  const std::vector<float>& levels() const { return levels_; }
  // The device level (0 = LCS, i = HCS level i) that device j of a weight holds at weight level
  // `level`: single: the level itself; differential: j = 0 is G+, j = 1 is G-, one of them at
  // the LCS.
  std::size_t device_level(std::size_t level, std::size_t j) const;
  // Single-device form.
  float weight(double conductance_us) const;
  // The weight of one weight's devices_per_weight() consecutive reads.
  float weight_of(const float* conductance_us) const;
  // Program-and-verify target conductance of device level i (its median).
  double target_us(std::size_t device_level) const { return medians_us_[device_level]; }

 private:
  Mapping mapping_;
  std::vector<double> medians_us_;
  std::vector<float> levels_;
  double lcs_us_ = 0, scale_ = 0;
};

// The checkpoint's store state (host byte order): a vector is its size as a std::uint64_t, then
// its elements.
class StateWriter : public common::ByteWriter {
 public:
  template <class T>
  void array(const std::vector<T>& values) {
    pod<std::uint64_t>(values.size());
    pods(values);
  }
};

// Throws std::runtime_error("checkpoint store state: ...") on truncated or mismatched data.
class StateReader : public common::ByteReader {
 public:
  explicit StateReader(std::string_view bytes)
      : ByteReader(bytes, [](const common::ByteReadError&) { fail("truncated"); }) {}
  template <class T>
  std::vector<T> array(std::size_t expected_size) {
    const auto n = pod<std::uint64_t>();
    if (n != expected_size)
      fail("size " + std::to_string(n) + ", expected " + std::to_string(expected_size));
    return pods<T>(n);
  }
  [[noreturn]] static void fail(const std::string& what) {
    throw std::runtime_error("checkpoint store state: " + what +
                             "; the checkpoint does not match this placement");
  }
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
  // Analog devices (2 per weight with differential pairs); ideal: one "device" per weight.
  virtual std::size_t devices() const { return size(); }

  // Programs every weight to the level of wq[k] (each wq[k] must be one of the quantizer's
  // levels) and writes what the forward pass sees into effective[k].
  void program_all(std::span<const float> wq, std::span<float> effective);
  // After an optimizer step: programs exactly the weights whose quantized level differs from the
  // stored one, in one batch, and updates their effective weights. Returns how many.
  std::size_t update(std::span<const float> wq, std::span<float> effective);
  // The same when the caller knows which wq[k] changed since the previous program_all/update
  // (`candidates`, ascending: MetaplasticAdam's list): only those are compared. The first update
  // after a load() compares every weight, whatever the list says.
  std::size_t update(std::span<const float> wq, std::span<float> effective,
                     std::span<const std::uint32_t> candidates);
  // The weights the last program_all/update programmed (ascending).
  std::span<const std::uint32_t> last_programmed() const { return changed_; }
  // Reads every device again (relaxation and read noise show up); ideal: nothing to do.
  virtual void refresh(std::span<float> /*effective*/) {}
  // Advances the device clock (virtual devices relax with it) by one training step.
  void tick() { ++step_; }

  // Programming operations (SET or RESET pulses, verify retries included) and reads, in total
  // and per device (devices() values, weight k's devices at k * devices_per_weight + j; ideal:
  // one operation per level change).
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
  std::vector<std::vector<std::uint32_t>> changed_parts_;  // per thread range, kept across steps

 private:
  // Whether weight k's stored level differs from wq; if so, takes wq's level.
  bool take_level(std::size_t k, float wq);
  // Programs changed_ (a batch) and returns how many.
  std::size_t program_changes(std::span<float> effective);

  bool compare_all_next_ = false;  // after load(): the levels may not match the caller's last wq
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

// Device level of a device never programmed (it is programmed whatever its target).
inline constexpr std::uint16_t kUnprogrammed = 0xFFFF;

// Simulated device time per training step, for relaxation (virtual devices).
inline constexpr double kDeviceSecondsPerStep = 0.05;

// Virtual devices from the calibrated model (one per weight, or a differential pair): device-to-
// device offsets drawn at construction from `seed`, program-and-verify as the simulated board's
// firmware does it (RESET when above the band or for the LCS, else SET at the level's compliance
// current; a read after every pulse), read noise on every read, relaxation with the device clock.
// A level change programs only the devices whose own level changes. Each device draws from its
// own random stream (normals by the ziggurat: devices::NormalMethod), keyed by (seed, device,
// programming or refresh call), so the devices of one call are programmed in parallel on the
// hot-path threads and the numbers do not depend on the thread count.
class VirtualStore final : public WeightStore {
 public:
  VirtualStore(const learning::Quantizer& quantizer, std::size_t weights,
               const devices::Calibration& calibration, std::uint64_t seed, VerifyOptions verify = {},
               Mapping mapping = Mapping::single);
  StoreKind kind() const override { return StoreKind::virtual_devices; }
  std::size_t devices() const override { return devices_.size(); }
  std::vector<std::uint32_t> device_writes() const override;
  void refresh(std::span<float> effective) override;

 private:
  void program(std::span<const std::uint32_t> indices, std::span<float> effective) override;
  void save_devices(StateWriter& out) const override;
  void load_devices(StateReader& in, std::span<float> effective) override;
  struct Counts {
    std::uint64_t writes = 0, reads = 0;
  };
  // Programs device d to its level; returns the pulses and reads it took.
  Counts program_device(std::size_t d, std::size_t level, devices::RandomStream& rng);
  // The random stream of device d in the current call (calls_).
  devices::RandomStream stream(std::size_t d) const;
  double true_conductance_us(std::size_t d) const;
  // Extends relaxation_by_steps_ to the current step (before the devices are worked on in
  // parallel).
  void prepare_relaxation();

  devices::DeviceModel model_;
  ConductanceMapping mapping_;
  VerifyOptions verify_;
  std::uint64_t seed_;
  std::uint64_t calls_ = 0;  // program() and refresh() calls so far: part of every stream's key
  // Worked out once: the SET parameters of HCS level i at [i - 1], and the relaxation factors
  // of a programming e steps ago at [e] (e = 0 .. step_).
  std::vector<devices::HcsDrawParameters> set_parameters_;
  std::vector<devices::RelaxationFactors> relaxation_by_steps_;
  // One device's state, together (32 bytes): a step programs a scattered few percent of the
  // devices, and a record per device costs one cache miss where separate arrays cost nine.
  struct Device {
    float hcs_z = 0, lcs_z = 0;            // fixed at manufacture
    float programmed_us = 0, step_us = 0;  // last programmed G0 and its relaxation step
    float last_read_us = 0;
    std::uint32_t programmed_at = 0;      // device clock (steps) of the last programming
    std::uint32_t writes = 0;             // programming pulses so far
    std::uint16_t level = kUnprogrammed;  // kUnprogrammed until first programmed
    std::uint8_t in_hcs = 0;              // a SET on an HCS device keeps the larger G (sim/chip)
  };
  // The checkpointed fields of Device, in the checkpoint's order (one array each, as the store
  // kept them before its per-device records): save_devices and load_devices visit them.
  template <class Visit>
  static void checkpointed_fields(Visit&& visit) {
    visit(&Device::programmed_us);
    visit(&Device::step_us);
    visit(&Device::programmed_at);
    visit(&Device::last_read_us);
    visit(&Device::in_hcs);
    visit(&Device::writes);
  }
  // What the forward pass sees of weight k: the weight of its devices' last reads.
  float effective_weight(std::size_t k) const;
  // Weight k's devices at k * devices_per_weight + j.
  std::vector<Device> devices_;
};

}  // namespace metaplast::hil
