// The simulated 128 x 128 1T1R array: every cell's state, its manufacture traits and counters,
// one random stream and the device clock. Like the real chip it is non-volatile: save() and
// load() carry everything (cells, counters, random state, device time, boot count) across
// restarts, so a continued run gives the same numbers as an uninterrupted one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "devices/device_model.hpp"
#include "devices/random.hpp"

namespace metaplast::sim {

class StateFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class CellState : std::uint8_t { pristine = 0, lcs = 1, hcs = 2 };

struct Cell {
  CellState state = CellState::pristine;
  bool stuck = false;                 // no longer switches (defect or worn out)
  double programmed_us = 0.0;         // conductance right after the last switching event
  double relaxation_step_us = 0.0;    // drawn at that event
  std::int64_t programmed_at_ns = 0;  // device time of that event
  std::uint64_t set_pulses = 0;       // SET pulses applied (switching or not)
  std::uint64_t reset_pulses = 0;     // RESET pulses applied
  std::uint64_t form_pulses = 0;      // FORM pulses applied
  std::uint64_t reads = 0;            // read operations
  devices::CellTraits traits;
};

class Chip {
 public:
  static constexpr int kRows = 128;
  static constexpr int kColumns = 128;
  static constexpr int kCells = kRows * kColumns;

  // A freshly manufactured chip: traits drawn from `seed` (cells in row-major order), all cells
  // pristine except the stuck-at defects. Device time 0, boot count 0.
  Chip(devices::DeviceModel model, std::uint64_t seed);

  // Loads a state file written by save(). The device model stored in the file is used unless
  // `model_override` is given (e.g. a new --calibration). Throws StateFileError naming the file.
  // Version 2 files end in a CRC-32 (a flipped byte is refused); version 1 files have none.
  static Chip load(const std::filesystem::path& path, const devices::Calibration* model_override = nullptr);
  // What load() does once the file is read, on its bytes (`name` is only used in messages).
  static Chip parse(std::string_view bytes, const std::string& name,
                    const devices::Calibration* model_override = nullptr);
  // Writes the whole state atomically. Throws StateFileError naming the file.
  void save(const std::filesystem::path& path) const;

  // Forms every formable cell and RESETs it (as a factory would: one FORM and one RESET pulse
  // each, counted), leaving the array in the LCS. Unformable cells stay pristine.
  void form_all_at_factory();

  // Pulses on one cell (index = row * kColumns + column). Each returns nothing: the outcome is
  // seen by reading. A SET or RESET pulse counts as one programming operation whether or not the
  // cell switches; reaching the cell's endurance makes it stuck.
  // How voltage and width act is docs/calibration.md, "The simulated device's response to pulse
  // conditions". A decision with a probability strictly between 0 and 1 (SET near its threshold,
  // FORM with a per-pulse spread) uses a uniform number hashed from (seed, cell, pulse count),
  // never the chip's random stream: the stream is consumed exactly as by a threshold model, so
  // seeded results at the default pulses do not depend on these parameters.
  // FORM: forms a pristine cell with the probability its forming voltage and the pulse give (to
  // HCS at the gate's I_CC); on a formed cell it acts as a SET.
  void form(int cell, double bl_v, double gate_v, double width_ns);
  // SET to HCS at the I_CC the gate voltage gives, with the probability bl_v and width give.
  void set(int cell, double bl_v, double gate_v, double width_ns);
  // RESET to LCS (if sl_v and width pass the threshold), deeper the stronger the pulse.
  void reset(int cell, double sl_v, double width_ns);
  // One read at `read_v` (V): the conductance (uS) with relaxation at the current device time and
  // read noise; then the read disturbs a formed, working cell by the factor its voltage gives.
  double read(int cell, double read_v);
  // A read at the calibration's read voltage.
  double read(int cell) { return read(cell, model_.calibration().read_voltage_v); }
  // The noiseless conductance now (for tests and diagnostics; consumes no random numbers).
  double true_conductance_us(int cell) const;

  const Cell& cell(int index) const { return cells_.at(static_cast<std::size_t>(index)); }
  const devices::DeviceModel& model() const { return model_; }
  std::uint64_t seed() const { return seed_; }

  // Device clock (ns), advanced by the firmware's timing model.
  std::int64_t time_ns() const { return time_ns_; }
  void advance_time_ns(std::int64_t ns) { time_ns_ += ns; }
  // Power-ups / resets so far (persisted, so boot ids differ across restarts).
  std::uint64_t boot_count() const { return boot_count_; }
  void count_boot() { ++boot_count_; }

  // Makes a cell stuck at its present conductance (fault injection).
  void make_stuck(int cell);

  // The random stream, exposed for firmware-level draws that belong to the physics.
  devices::RandomStream& rng() { return rng_; }

 private:
  // All cells pristine with zero traits, nothing drawn: for load(), which reads the traits.
  struct Undrawn {};
  Chip(devices::DeviceModel model, std::uint64_t seed, Undrawn);

  void program(Cell& c, CellState state, double g_us);
  void count_pulse(Cell& c);
  // Uniform in [0, 1) from (seed, cell, pulse kind, pulse count): the decisions of the pulse
  // response, reproducible across save() and load() without a stream of their own.
  double pulse_uniform(int cell, std::uint64_t kind, std::uint64_t count) const;
  Cell& at(int index);

  devices::DeviceModel model_;
  std::uint64_t seed_ = 0;
  devices::RandomStream rng_;
  std::vector<Cell> cells_;
  std::int64_t time_ns_ = 0;
  std::uint64_t boot_count_ = 0;
};

}  // namespace metaplast::sim
