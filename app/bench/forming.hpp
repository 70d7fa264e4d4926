// Forming ramp (docs/bench.md, "Measurements"): the pristine cells of a block are formed by a
// staircase of FORM pulses on the bit line, start_v, start_v + step_v, ... up to stop_v, each of
// width width_ns with the word line (gate) at compliance_v, which limits the forming current.
// At each ramp step every cell of the block that is not formed yet gets one FORM pulse (one
// batched ArrayBoard::form, the board reconfigured to the step's voltage), then all of them one
// batched READ; a cell reading at least threshold_us is formed at that step's voltage and is
// never pulsed again. Cells that read formed before the ramp are never pulsed; cells that never
// form by stop_v are listed. The whole ramp's highest pulse is checked against the station
// limits before anything is read or pulsed.
//
// The fit is that of docs/calibration.md's model "4. Forming" (pulse_sigma_v = 0): a cell forms
// at the first step whose voltage reaches its forming voltage V_f, so V_f lies in
// (V_{k-1}, V_k]; the median and sigma of V_f are the mean and the standard deviation of the
// interval midpoints V_k - step_v / 2 (Sheppard's correction: sigma^2 = s^2 - step_v^2 / 12).
// A width other than the calibration's reference width is converted with its
// width_v_per_decade: V_f(reference) = V + width_v_per_decade log10(width / reference_width).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/bench/array_map.hpp"
#include "app/bench/measurement.hpp"
#include "devices/calibration.hpp"

namespace metaplast::bench {

inline constexpr std::size_t kMaxFormingSteps = 1000;

struct FormingOptions {
  CellBlock block;                                    // default: the 16 x 16 cells at (0, 0)
  double start_v = 2.4, stop_v = 3.6, step_v = 0.05;  // FORM bit-line voltage ramp
  double width_ns = 1000;                             // FORM pulse width
  // FORM word-line (gate) voltage. 0.9 V (I_CC 20 uA on the default chip, level 2's gate) makes
  // a filament of ~40 uS, far above the threshold; at the board's default 0.85 V (~25 +- 4.5 uS)
  // about 1 formed cell in 2000 reads below 10 uS and would be taken for unformed.
  double compliance_v = 0.9;
  // A cell reading at least this is formed (docs/calibration.md /forming/success_conductance_us).
  double threshold_us = devices::FormingModel{}.success_conductance_us;
};

// The ramp's voltages: start_v + k step_v (on the board's 1 mV grid) up to stop_v.
std::vector<double> forming_ramp(const FormingOptions& options);
// Throws OptionError naming the option (row0, col0, rows, cols, start-v, stop-v, step-v,
// width-ns, compliance-v, threshold-us).
void check_forming_options(const FormingOptions& options);
// A campaign step's options (keys as the command-line options without "--"). Throws
// OptionError naming the key.
FormingOptions forming_options_from_json(const nlohmann::json& step);
nlohmann::json to_json(const FormingOptions& options);

// Per-cell outcome codes (forming_step and the HDF5 file): a step index 0.. for a cell formed
// in the ramp, else one of these.
inline constexpr int kFormedBefore = -2;  // read formed before the ramp: never pulsed
inline constexpr int kNotFormed = -1;     // not formed (yet, or by stop_v)

struct FormingParameter {
  double value = 0, standard_error = 0;
};

struct FormingFit {
  std::size_t ramp_cells = 0;  // pulsed in the ramp (not formed before it)
  std::size_t formed = 0;      // formed in the ramp
  std::size_t unformed = 0;    // never formed by the last step done
  std::size_t first_step = 0;  // formed at the first step (their V_f may lie below start_v)
  FormingParameter median_v;   // at the measured width
  FormingParameter sigma_v;
  double median_reference_v = 0;        // converted to the reference width
  double width_shift_v = 0;             // width_v_per_decade log10(width / reference_width)
  bool identifiable = false;            // >= 10 formed, <= 2 % at the first step, <= 2 % unformed
  std::vector<double> formed_fraction;  // cumulative, per step done, of ramp_cells
};

// The fit from the ramp's voltages and every cell's forming step (codes above); steps_done
// limits the ramp to the steps measured. Throws std::invalid_argument with fewer than 2 cells
// formed in the ramp.
FormingFit fit_forming(const std::vector<double>& ramp_v, std::size_t steps_done,
                       const std::vector<int>& forming_step, double step_v, double width_ns,
                       const devices::FormingModel& base);

class FormingMeasurement final : public Measurement {
 public:
  // `base`: the calibration whose reference width and width_v_per_decade convert the width.
  explicit FormingMeasurement(FormingOptions options, devices::FormingModel base = {});

  std::string kind() const override { return "forming"; }
  nlohmann::json options_json() const override { return to_json(options_); }
  void check_options() const override { check_forming_options(options_); }
  // Checks the ramp against the station limits, then reads the block once.
  void start(MeasurementContext& context) override;
  // Also reads the cells not formed yet: a cell formed by the step of a killed run counts at the
  // step it resumes at.
  void restore(const nlohmann::json& state, MeasurementContext& context) override;
  nlohmann::json progress_json() const override;
  bool done() const override;
  // One ramp step: one batched FORM of the cells not formed yet, one batched READ of them.
  void run_batch(MeasurementContext& context) override;
  std::size_t batches_done() const override { return next_step_; }
  std::size_t batches_total() const override { return ramp_.size(); }
  std::string batch_label() const override { return "ramp step"; }
  // forming.h5, forming.csv, forming_unformed.csv, forming.png (formed fraction against
  // voltage), forming_map.png (forming voltage of every cell); the fit.
  nlohmann::json write_results(const MeasurementRecord& record, const std::filesystem::path& dir,
                               std::string& plot_error) const override;

  const std::vector<double>& ramp() const { return ramp_; }
  // Per cell of the block (row-major): the step it formed at, or kFormedBefore / kNotFormed.
  const std::vector<int>& forming_step() const { return forming_step_; }
  // Cells not formed by the last step done (never formed by stop_v once done()).
  std::vector<instruments::Cell> unformed_cells() const;
  std::optional<FormingFit> fit() const;

  // The formed fraction against the ramp's voltage, as forming.png draws it (empty without a
  // fit: fewer than 2 cells in the ramp).
  LevelPlot yield_plot(const MeasurementRecord& record, const std::optional<FormingFit>& f) const;
  std::optional<LevelPlot> live_plot(const MeasurementRecord& record) const override;

 private:
  // The board configured for a FORM at `bl_v` with the ramp's width and gate.
  instruments::BoardSettings step_settings(const instruments::BoardSettings& base,
                                           double bl_v) const;
  std::vector<std::size_t> pending() const;  // cells to pulse at the next step

  FormingOptions options_;
  devices::FormingModel base_;
  std::vector<double> ramp_;
  std::vector<double> initial_us_;            // per cell: the read before the ramp
  std::vector<int> forming_step_;             // per cell
  std::vector<std::vector<double>> read_us_;  // [step][cell]; NaN: not read at that step
  std::size_t next_step_ = 0;
};

}  // namespace metaplast::bench
