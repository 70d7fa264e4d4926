#include "app/bench/endurance.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "app/bench/level_plot.hpp"
#include "app/util/csv.hpp"
#include "app/util/h5_file.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
namespace in = metaplast::instruments;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The window plot leaves out read points with fewer cells alive: the median and 10-90 % band of
// a handful of cells jump from point to point.
constexpr std::size_t kMinAliveCellsPlotted = 5;

void check_range(const std::vector<int>& range, const char* key) {
  if (range.size() != 2 || range[0] < 0 || range[1] < range[0] || range[1] > 65535) {
    throw OptionError(key, std::string("give the region's first and last ") +
                               (key[0] == 'r' ? "row" : "column") +
                               ", e.g. 0,15 (required: endurance never cycles the whole array "
                               "unless you name it)");
  }
}

// Normal upper tail Q(z) = 1 - Phi(z), and log(Phi(b) - Phi(a)) for a < b without cancellation
// in the far tails.
double upper_tail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }
double log_probability_between(double za, double zb) {
  const double p = za > 0 ? upper_tail(za) - upper_tail(zb) : upper_tail(-zb) - upper_tail(-za);
  return std::log(std::max(p, 1e-300));
}

// Minimises f over two parameters from x0 (Nelder-Mead, the standard coefficients).
template <class F>
std::array<double, 2> minimise(const F& f, std::array<double, 2> x0, std::array<double, 2> step) {
  using P = std::array<double, 2>;
  std::array<P, 3> x = {x0, P{x0[0] + step[0], x0[1]}, P{x0[0], x0[1] + step[1]}};
  std::array<double, 3> v = {f(x[0]), f(x[1]), f(x[2])};
  const auto along = [](const P& a, const P& b, double t) {
    return P{a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])};
  };
  for (int it = 0; it < 2000; ++it) {
    std::array<int, 3> o = {0, 1, 2};
    std::sort(o.begin(), o.end(), [&](int a, int b) { return v[a] < v[b]; });
    const P best = x[o[0]], mid = x[o[1]], worst = x[o[2]];
    if (std::fabs(v[o[2]] - v[o[0]]) < 1e-10 &&
        std::hypot(worst[0] - best[0], worst[1] - best[1]) < 1e-9) {
      break;
    }
    const P centre{(best[0] + mid[0]) / 2, (best[1] + mid[1]) / 2};
    const P reflected = along(centre, worst, -1.0);
    const double fr = f(reflected);
    if (fr < v[o[0]]) {
      const P expanded = along(centre, worst, -2.0);
      const double fe = f(expanded);
      x[o[2]] = fe < fr ? expanded : reflected;
      v[o[2]] = std::min(fe, fr);
    } else if (fr < v[o[1]]) {
      x[o[2]] = reflected;
      v[o[2]] = fr;
    } else {
      const P contracted = along(centre, worst, 0.5);
      const double fc = f(contracted);
      if (fc < v[o[2]]) {
        x[o[2]] = contracted;
        v[o[2]] = fc;
      } else {
        for (int k : {o[1], o[2]}) {
          x[k] = along(best, x[k], 0.5);
          v[k] = f(x[k]);
        }
      }
    }
  }
  return *std::min_element(x.begin(), x.end(), [&](const P& a, const P& b) { return f(a) < f(b); });
}

json estimate_json(const EstimatedValue& e, const std::string& note) {
  return {{"value", e.value},
          {"standard_error", e.standard_error ? json(*e.standard_error) : json(nullptr)},
          {"identifiable", e.identifiable},
          {"note", note}};
}

std::string cycles_text(double cycles) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", cycles);
  return text;
}

}  // namespace

std::vector<std::uint64_t> endurance_read_cycles(const EnduranceOptions& o) {
  if (o.read_every == 0) return log_spaced_counts(o.cycles, o.points);
  std::vector<std::uint64_t> cycles{1};
  for (std::uint64_t k = o.read_every; k <= o.cycles; k += o.read_every) {
    if (k > cycles.back()) cycles.push_back(k);
  }
  if (cycles.back() != o.cycles) cycles.push_back(o.cycles);
  return cycles;
}

void check_endurance_options(const EnduranceOptions& o) {
  check_range(o.rows, "rows");
  check_range(o.cols, "cols");
  if (o.cycles < 1 || o.cycles > static_cast<std::uint64_t>(kMaxEnduranceCycles)) {
    throw OptionError("cycles", "must be in 1.." + std::to_string(kMaxEnduranceCycles));
  }
  if (o.points < 2 || o.points > 10'000) throw OptionError("points", "must be in 2..10000");
  if (o.read_every > o.cycles) throw OptionError("read-every", "must be in 0 (log-spaced)..cycles");
  if (o.read_every > 0 && o.cycles / o.read_every > 100'000) {
    throw OptionError("read-every", "gives more than 100000 read points; read less often");
  }
  if (o.set_level < 0 || o.set_level > 64) {
    throw OptionError("set-level", "must be 1..64, or 0 for the board's highest level");
  }
  if (!(o.window_factor > 1) || o.window_factor > 1e6) {
    throw OptionError("window-factor", "must be in (1, 1e6]: G_LRS / G_HRS that keeps it open");
  }
  if (o.confirm_points < 1 || o.confirm_points > 100) {
    throw OptionError("confirm-points", "must be in 1..100");
  }
  if (!(o.formed_threshold_us >= 0) || !std::isfinite(o.formed_threshold_us)) {
    throw OptionError("formed-threshold-us", "must be >= 0 (0: 0.2 x the LCS target)");
  }
}

json to_json(const EnduranceOptions& o) {
  return {{"rows", o.rows},
          {"cols", o.cols},
          {"cycles", o.cycles},
          {"points", o.points},
          {"read-every", o.read_every},
          {"set-level", o.set_level},
          {"window-factor", o.window_factor},
          {"confirm-points", o.confirm_points},
          {"formed-threshold-us", o.formed_threshold_us}};
}

EnduranceOptions endurance_options_from_json(const json& step) {
  json_only_keys(step, {"rows", "cols", "cycles", "points", "read-every", "set-level",
                        "window-factor", "confirm-points", "formed-threshold-us"});
  EnduranceOptions o;
  for (const char* key : {"rows", "cols"}) {
    if (!step.contains(key)) {
      throw OptionError(key, "missing: the region's first and last, e.g. [0, 15] (required)");
    }
    (key[0] == 'r' ? o.rows : o.cols) = json_integers(step, key, 0, 65535);
  }
  if (step.contains("cycles")) {
    o.cycles = static_cast<std::uint64_t>(json_integer(step, "cycles", 1, kMaxEnduranceCycles));
  }
  if (step.contains("points")) o.points = json_integer(step, "points", 2, 10'000);
  if (step.contains("read-every")) {
    o.read_every =
        static_cast<std::uint64_t>(json_integer(step, "read-every", 0, kMaxEnduranceCycles));
  }
  if (step.contains("set-level"))
    o.set_level = static_cast<int>(json_integer(step, "set-level", 0, 64));
  if (step.contains("window-factor")) o.window_factor = json_number(step, "window-factor", 1, 1e6);
  if (step.contains("confirm-points"))
    o.confirm_points = json_integer(step, "confirm-points", 1, 100);
  if (step.contains("formed-threshold-us")) {
    o.formed_threshold_us = json_number(step, "formed-threshold-us", 0, 1e6);
  }
  check_endurance_options(o);
  return o;
}

EnduranceFit fit_lognormal_failures(const std::vector<FailureInterval>& cells) {
  EnduranceFit fit;
  fit.cells = cells.size();
  std::vector<double> ln_failed;
  std::vector<std::pair<double, double>> distinct;
  for (const auto& c : cells) {
    if (!c.high_pulses) continue;
    ln_failed.push_back(0.5 * (std::log(std::max(c.low_pulses, 1.0)) + std::log(*c.high_pulses)));
    distinct.emplace_back(c.low_pulses, *c.high_pulses);
  }
  fit.failed = ln_failed.size();
  fit.censored = fit.cells - fit.failed;
  if (fit.failed == 0) {
    throw std::invalid_argument("endurance fit: no cell failed; cycle longer");
  }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

  // Minus the log-likelihood at (mu, sigma) of ln(pulses to failure).
  const auto nll = [&cells](double mu, double sigma) {
    double l = 0;
    for (const auto& c : cells) {
      const double za = c.low_pulses > 0 ? (std::log(c.low_pulses) - mu) / sigma : -1e300;
      if (c.high_pulses) {
        l += log_probability_between(za, (std::log(*c.high_pulses) - mu) / sigma);
      } else {
        l += std::log(std::max(upper_tail(za), 1e-300));
      }
    }
    return -l;
  };
  // sigma as its logarithm (bounded) for the search.
  const auto objective = [&nll](const std::array<double, 2>& p) {
    return nll(p[0], std::exp(std::clamp(p[1], -7.0, 3.0)));
  };
  double mean = 0, var = 0;
  for (double v : ln_failed) mean += v / static_cast<double>(fit.failed);
  for (double v : ln_failed) var += (v - mean) * (v - mean) / static_cast<double>(fit.failed);
  const auto best =
      minimise(objective, {mean, std::log(std::max(std::sqrt(var), 0.05))}, {0.2, 0.3});
  const double mu = best[0], sigma = std::exp(std::clamp(best[1], -7.0, 3.0));
  fit.log_likelihood = -nll(mu, sigma);

  // Standard errors from the observed information (central differences in mu and sigma).
  const double hm = 1e-3, hs = 1e-3 * sigma;
  const double f0 = nll(mu, sigma);
  const double fmm = (nll(mu + hm, sigma) - 2 * f0 + nll(mu - hm, sigma)) / (hm * hm);
  const double fss = (nll(mu, sigma + hs) - 2 * f0 + nll(mu, sigma - hs)) / (hs * hs);
  const double fms = (nll(mu + hm, sigma + hs) - nll(mu + hm, sigma - hs) -
                      nll(mu - hm, sigma + hs) + nll(mu - hm, sigma - hs)) /
                     (4 * hm * hs);
  const double det = fmm * fss - fms * fms;
  std::optional<double> se_mu, se_sigma;
  if (det > 0 && fmm > 0 && fss > 0) {
    se_mu = std::sqrt(fss / det);
    se_sigma = std::sqrt(fmm / det);
  }
  fit.median_pulses.value = std::exp(mu);
  if (se_mu) fit.median_pulses.standard_error = fit.median_pulses.value * *se_mu;
  fit.median_pulses.identifiable = se_mu.has_value() && fit.failed >= 3;
  fit.sigma_ln.value = sigma;
  fit.sigma_ln.standard_error = se_sigma;
  fit.sigma_ln.identifiable = se_sigma.has_value() && fit.failed >= 5 && distinct.size() >= 2;
  return fit;
}

EnduranceMeasurement::EnduranceMeasurement(EnduranceOptions options)
    : options_(std::move(options)) {
  // Bad options are reported by check_options(), before anything is sent.
  try {
    check_endurance_options(options_);
    read_cycles_ = endurance_read_cycles(options_);
  } catch (const OptionError&) {
  }
}

std::size_t EnduranceMeasurement::alive_count() const {
  return static_cast<std::size_t>(
      std::count(failed_at_point_.begin(), failed_at_point_.end(), std::int64_t{-1}));
}

void EnduranceMeasurement::start(MeasurementContext& context) {
  in::ArrayBoard& board = context.board;
  const auto& info = board.info();
  if (static_cast<std::size_t>(options_.rows[1]) >= info.rows ||
      static_cast<std::size_t>(options_.cols[1]) >= info.cols) {
    throw OptionError(static_cast<std::size_t>(options_.rows[1]) >= info.rows ? "rows" : "cols",
                      "outside the board's " + std::to_string(info.rows) + " x " +
                          std::to_string(info.cols) + " array");
  }
  const int top = static_cast<int>(info.levels.size()) - 1;
  set_level_ = options_.set_level > 0 ? options_.set_level : top;
  if (set_level_ < 1 || set_level_ > top) {
    throw OptionError("set-level", "the board has SET levels 1.." + std::to_string(top));
  }
  // The station's compliance limit, before any pulse (ArrayBoard::set checks it again).
  const double icc_ua = info.levels[static_cast<std::size_t>(set_level_)].icc_ua;
  if (icc_ua > board.station_limits().max_compliance_ua) {
    throw in::LimitError("--set-level " + std::to_string(set_level_) + ": I_CC " +
                         json(icc_ua).dump() +
                         " uA is above the station limit max_compliance_ua = " +
                         json(board.station_limits().max_compliance_ua).dump() + " (" +
                         board.station_limits().station_name + "); choose a lower --set-level");
  }
  const double threshold = options_.formed_threshold_us > 0 ? options_.formed_threshold_us
                                                            : 0.2 * board.level_conductance_us(0);
  const auto r0 = static_cast<std::uint16_t>(options_.rows[0]);
  const auto c0 = static_cast<std::uint16_t>(options_.cols[0]);
  const auto map = board.read_block(r0, c0, static_cast<std::uint16_t>(options_.rows[1] - r0 + 1),
                                    static_cast<std::uint16_t>(options_.cols[1] - c0 + 1));
  cells_.clear();
  for (std::uint16_t r = 0; r < map.rows; ++r) {
    for (std::uint16_t c = 0; c < map.cols; ++c) {
      const in::Cell cell{static_cast<std::uint16_t>(map.row0 + r),
                          static_cast<std::uint16_t>(map.col0 + c)};
      if (map.at_us(cell.row, cell.col) >= threshold) cells_.push_back(cell);
    }
  }
  unformed_in_region_ = static_cast<std::size_t>(map.rows) * map.cols - cells_.size();
  if (cells_.empty()) {
    throw std::invalid_argument(
        "no cell of the region reads as formed (>= " + json(threshold).dump() +
        " uS); name another region, or form the chip first with an explicit `metaplast board "
        "form --device " +
        board.address() + "` (measurements never form cells)");
  }
  initial_pulses_.clear();
  for (const auto& c : board.counters(cells_))
    initial_pulses_.push_back(c.programming_operations());
  const std::size_t n = cells_.size();
  lrs_us_.assign(read_cycles_.size(), std::vector<double>(n, kNaN));
  hrs_us_ = lrs_us_;
  closed_run_.assign(n, 0);
  failed_at_point_.assign(n, -1);
  cycles_done_ = 0;
  next_point_ = 0;
  context.log("endurance: " + std::to_string(n) + " formed cells (" +
              std::to_string(unformed_in_region_) + " unformed left out) of rows " +
              json(options_.rows).dump() + ", cols " + json(options_.cols).dump() + "; SET level " +
              std::to_string(set_level_) + ", up to " + std::to_string(options_.cycles) +
              " cycles, " + std::to_string(read_cycles_.size()) + " read points");
}

void EnduranceMeasurement::restore(const json& state, MeasurementContext&) {
  cells_.clear();
  for (const auto& c : state.at("cells")) {
    cells_.push_back({c.at(0).get<std::uint16_t>(), c.at(1).get<std::uint16_t>()});
  }
  const std::size_t n = cells_.size();
  initial_pulses_ = state.at("initial_pulses").get<std::vector<std::uint64_t>>();
  set_level_ = state.at("set_level").get<int>();
  unformed_in_region_ = state.at("unformed_in_region").get<std::size_t>();
  closed_run_ = state.at("closed_run").get<std::vector<std::size_t>>();
  failed_at_point_ = state.at("failed_at_point").get<std::vector<std::int64_t>>();
  cycles_done_ = state.at("cycles_done").get<std::uint64_t>();
  next_point_ = state.at("next_point").get<std::size_t>();
  if (initial_pulses_.size() != n || closed_run_.size() != n || failed_at_point_.size() != n) {
    throw std::invalid_argument("endurance progress file: per-cell lists of different lengths");
  }
  lrs_us_.assign(read_cycles_.size(), std::vector<double>(n, kNaN));
  hrs_us_ = lrs_us_;
  for (const char* key : {"lrs_us", "hrs_us"}) {
    auto& g = key[0] == 'l' ? lrs_us_ : hrs_us_;
    const json& saved = state.at(key);
    for (std::size_t k = 0; k < next_point_ && k < g.size(); ++k) {
      for (std::size_t c = 0; c < n; ++c) {
        g[k][c] = saved.at(k).at(c).is_null() ? kNaN : saved.at(k).at(c).get<double>();
      }
    }
  }
}

json EnduranceMeasurement::progress_json() const {
  json cells = json::array();
  for (const auto& c : cells_) cells.push_back({c.row, c.col});
  // NaN is written as null by nlohmann::json.
  json lrs = json::array(), hrs = json::array();
  for (std::size_t k = 0; k < next_point_; ++k) {
    lrs.push_back(lrs_us_[k]);
    hrs.push_back(hrs_us_[k]);
  }
  return {{"cells", cells},
          {"initial_pulses", initial_pulses_},
          {"set_level", set_level_},
          {"unformed_in_region", unformed_in_region_},
          {"closed_run", closed_run_},
          {"failed_at_point", failed_at_point_},
          {"cycles_done", cycles_done_},
          {"next_point", next_point_},
          {"lrs_us", lrs},
          {"hrs_us", hrs}};
}

void EnduranceMeasurement::run_batch(MeasurementContext& context) {
  std::vector<std::size_t> alive;
  std::vector<in::Cell> cells;
  for (std::size_t c = 0; c < cells_.size(); ++c) {
    if (failed_at_point_[c] < 0) {
      alive.push_back(c);
      cells.push_back(cells_[c]);
    }
  }
  const std::uint64_t target = read_cycles_[next_point_];
  const std::uint64_t stop_at = std::min(target, cycles_done_ + kCyclesPerBatch);
  const auto level = static_cast<in::Level>(set_level_);
  while (cycles_done_ < stop_at) {
    const bool read_point = cycles_done_ + 1 == target;
    // One cycle: one batched SET and one batched RESET of every cell still alive.
    context.board.set(cells, level);
    std::vector<in::CellReading> lrs, hrs;
    if (read_point) lrs = context.board.read(cells);
    context.board.reset(cells);
    if (read_point) hrs = context.board.read(cells);
    ++cycles_done_;
    if (read_point) record_read_point(alive, lrs, hrs);
  }
}

void EnduranceMeasurement::record_read_point(const std::vector<std::size_t>& alive,
                                             const std::vector<in::CellReading>& lrs,
                                             const std::vector<in::CellReading>& hrs) {
  const std::size_t k = next_point_;
  for (std::size_t i = 0; i < alive.size(); ++i) {
    const std::size_t c = alive[i];
    lrs_us_[k][c] = lrs[i].conductance_us;
    hrs_us_[k][c] = hrs[i].conductance_us;
    const bool open = lrs[i].conductance_us >= options_.window_factor * hrs[i].conductance_us;
    closed_run_[c] = open ? 0 : closed_run_[c] + 1;
    if (closed_run_[c] >= options_.confirm_points) {
      failed_at_point_[c] = static_cast<std::int64_t>(k + 1 - closed_run_[c]);
    }
  }
  ++next_point_;
}

std::vector<std::optional<std::size_t>> EnduranceMeasurement::failure_points() const {
  std::vector<std::optional<std::size_t>> out(cells_.size());
  for (std::size_t c = 0; c < cells_.size(); ++c) {
    if (failed_at_point_[c] >= 0) out[c] = static_cast<std::size_t>(failed_at_point_[c]);
  }
  return out;
}

std::vector<FailureInterval> EnduranceMeasurement::failure_intervals() const {
  std::vector<FailureInterval> out;
  for (std::size_t c = 0; c < cells_.size(); ++c) {
    const auto p0 = static_cast<double>(initial_pulses_[c]);
    const auto pulses_at = [&](std::size_t k) {
      return p0 + 2.0 * static_cast<double>(read_cycles_[k]);
    };
    if (failed_at_point_[c] == 0) continue;  // dead on arrival
    if (failed_at_point_[c] > 0) {
      const auto k = static_cast<std::size_t>(failed_at_point_[c]);
      out.push_back({pulses_at(k - 1), pulses_at(k)});
      continue;
    }
    // Alive: censored at its last open read point (an unconfirmed closed run is not counted).
    if (next_point_ <= closed_run_[c]) continue;
    out.push_back({pulses_at(next_point_ - 1 - closed_run_[c]), std::nullopt});
  }
  return out;
}

std::vector<std::optional<bool>> EnduranceMeasurement::stuck_high() const {
  std::vector<std::optional<bool>> out(cells_.size());
  if (next_point_ == 0) return out;
  std::vector<double> lrs0, hrs0;
  for (std::size_t c = 0; c < cells_.size(); ++c) {
    if (failed_at_point_[c] == 0) continue;
    lrs0.push_back(lrs_us_[0][c]);
    hrs0.push_back(hrs_us_[0][c]);
  }
  const double middle = std::sqrt(quantile_of(lrs0, 0.5) * quantile_of(hrs0, 0.5));
  for (std::size_t c = 0; c < cells_.size(); ++c) {
    if (failed_at_point_[c] < 0) continue;
    const auto k = static_cast<std::size_t>(failed_at_point_[c]);
    out[c] = std::sqrt(std::max(lrs_us_[k][c], 0.0) * std::max(hrs_us_[k][c], 0.0)) >= middle;
  }
  return out;
}

std::optional<EnduranceFit> EnduranceMeasurement::fit() const {
  EnduranceFit fit;
  try {
    fit = fit_lognormal_failures(failure_intervals());
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
  const auto stuck = stuck_high();
  std::vector<double> p0;
  for (std::size_t c = 0; c < cells_.size(); ++c) {
    p0.push_back(static_cast<double>(initial_pulses_[c]));
    if (failed_at_point_[c] == 0) {
      ++fit.dead_on_arrival;
    } else if (stuck[c]) {
      ++(*stuck[c] ? fit.stuck_high : fit.stuck_low);
    }
  }
  fit.median_cycles = (fit.median_pulses.value - quantile_of(p0, 0.5)) / 2.0;
  const double n = static_cast<double>(fit.stuck_high + fit.stuck_low);
  if (n > 0) {
    const double p = static_cast<double>(fit.stuck_high) / n;
    fit.stuck_hcs_probability.value = p;
    fit.stuck_hcs_probability.standard_error = std::sqrt(std::max(p * (1 - p), 0.25 / n) / n);
    fit.stuck_hcs_probability.identifiable = n >= 10;
  }
  return fit;
}

// The LRS and HRS medians with their 10-90 % bands against the cycle count.
LevelPlot EnduranceMeasurement::window_plot(const MeasurementRecord& record) const {
  const std::size_t n = cells_.size(), k_done = next_point_;
  const std::string who =
      record.board.serial + ", chip " + record.chip_id + ", " + std::to_string(n) + " cells";
  const std::vector<double> x(read_cycles_.begin(), read_cycles_.end());
  LevelPlot window;
  window.title = "Endurance window: " + who + ", SET level " + std::to_string(set_level_);
  window.x_label = "SET/RESET cycles";
  window.y_label = "Conductance G (µS)";
  window.log_x = window.log_y = true;
  window.key_title =
      "State (read points with at least " + std::to_string(kMinAliveCellsPlotted) + " cells alive)";
  const std::vector<int> all(n, 0);
  for (const bool lrs : {true, false}) {
    LevelCurve curve =
        level_curve(0, all, x, lrs ? lrs_us_ : hrs_us_, k_done, kMinAliveCellsPlotted);
    curve.level = lrs ? 4 : 1;  // red LRS, blue HRS
    curve.label = lrs ? "LRS (after SET)" : "HRS (after RESET)";
    window.curves.push_back(std::move(curve));
  }
  return window;
}

std::optional<LevelPlot> EnduranceMeasurement::live_plot(const MeasurementRecord& record) const {
  if (next_point_ == 0) return std::nullopt;
  return window_plot(record);
}

json EnduranceMeasurement::write_results(const MeasurementRecord& record, const fs::path& dir,
                                         std::string& plot_error) const {
  const std::size_t n = cells_.size(), k_done = next_point_;
  const auto f = fit();
  const auto failed = failure_points();
  const auto stuck = stuck_high();
  const std::vector<std::uint64_t> cycles(read_cycles_.begin(),
                                          read_cycles_.begin() + static_cast<long>(k_done));
  // Per cell: 0 alive, 1 failed, 2 dead on arrival; the read-point cycles bracketing a failure.
  std::vector<std::int32_t> status(n), stuck_code(n, -1);
  std::vector<std::uint64_t> initial(initial_pulses_.begin(), initial_pulses_.end());
  std::vector<double> last_open(n, kNaN), failed_cycle(n, kNaN);
  for (std::size_t c = 0; c < n; ++c) {
    if (failed[c]) {
      status[c] = *failed[c] == 0 ? 2 : 1;
      failed_cycle[c] = static_cast<double>(read_cycles_[*failed[c]]);
      if (*failed[c] > 0) last_open[c] = static_cast<double>(read_cycles_[*failed[c] - 1]);
      stuck_code[c] = *stuck[c] ? 1 : 0;
    } else if (k_done > closed_run_[c]) {
      last_open[c] = static_cast<double>(read_cycles_[k_done - 1 - closed_run_[c]]);
    }
  }
  {
    util::H5File h5(dir / "endurance.h5");
    write_record_attributes(h5, record);
    std::vector<std::uint32_t> index(n), rows(n), cols(n);
    for (std::size_t c = 0; c < n; ++c) {
      index[c] = static_cast<std::uint32_t>(c);
      rows[c] = cells_[c].row;
      cols[c] = cells_[c].col;
    }
    h5.write_vector("cell", index, "index of the cycled cell");
    h5.set_scale("cell", "cell");
    h5.write_vector("cycle", cycles, "SET/RESET cycles done at the read (1 = first cycle)");
    h5.set_scale("cycle", "cycle");
    h5.create_group("cells");
    h5.write_vector("cells/row", rows, "array row");
    h5.write_vector("cells/col", cols, "array column");
    h5.write_vector("cells/initial_pulses", initial, "SET + RESET pulses before the first cycle");
    h5.write_vector("cells/status", status, "0 alive, 1 failed, 2 dead on arrival");
    h5.write_vector("cells/stuck_high", stuck_code, "1 stuck at HCS, 0 at LCS, -1 alive");
    h5.write_vector("cells/last_open_cycle", last_open,
                    "cycles, last read point with the window open (NaN: none)");
    h5.write_vector("cells/cycles_to_failure", failed_cycle,
                    "cycles, first read point of the closed run that failed the cell (NaN: alive)");
    for (const char* name :
         {"cells/row", "cells/col", "cells/initial_pulses", "cells/status", "cells/stuck_high",
          "cells/last_open_cycle", "cells/cycles_to_failure"}) {
      h5.attach_scale(name, "cell", 0);
    }
    for (const char* name : {"g_lrs_us", "g_hrs_us"}) {
      const auto& g = name[2] == 'l' ? lrs_us_ : hrs_us_;
      std::vector<double> v(n * k_done);
      for (std::size_t c = 0; c < n; ++c) {
        for (std::size_t k = 0; k < k_done; ++k) v[c * k_done + k] = g[k][c];
      }
      h5.write_dataset(name, {n, k_done}, v,
                       name[2] == 'l' ? "uS, read after the cycle's SET (NaN: failed earlier)"
                                      : "uS, read after the cycle's RESET (NaN: failed earlier)");
      h5.attach_scale(name, "cell", 0);
      h5.attach_scale(name, "cycle", 1);
    }
    h5.create_group("fit");
    h5.string_attribute("fit", "model",
                        "ln(SET + RESET pulses to failure) ~ Normal(ln median, sigma_ln), interval "
                        "and right censored, maximum likelihood (docs/bench.md)");
    h5.number_attribute("fit", "window_factor", options_.window_factor);
    h5.integer_attribute("fit", "confirm_points",
                         static_cast<std::int64_t>(options_.confirm_points));
    h5.integer_attribute("fit", "set_level", set_level_);
    if (f) {
      h5.number_attribute("fit", "median_pulses", f->median_pulses.value);
      h5.number_attribute("fit", "median_cycles", f->median_cycles);
      h5.number_attribute("fit", "sigma_ln", f->sigma_ln.value);
      h5.number_attribute("fit", "stuck_hcs_probability", f->stuck_hcs_probability.value);
      if (f->median_pulses.standard_error) {
        h5.number_attribute("fit", "median_pulses_standard_error",
                            *f->median_pulses.standard_error);
      }
      if (f->sigma_ln.standard_error) {
        h5.number_attribute("fit", "sigma_ln_standard_error", *f->sigma_ln.standard_error);
      }
      h5.integer_attribute("fit", "failed", static_cast<std::int64_t>(f->failed));
      h5.integer_attribute("fit", "censored", static_cast<std::int64_t>(f->censored));
      h5.integer_attribute("fit", "dead_on_arrival", static_cast<std::int64_t>(f->dead_on_arrival));
    }
    h5.commit();
  }
  {
    util::CsvWriter csv(csv_header_lines(record), {"cell", "row", "col", "initial_pulses", "point",
                                                   "cycle", "g_lrs_us", "g_hrs_us", "window_open"});
    for (std::size_t c = 0; c < n; ++c) {
      for (std::size_t k = 0; k < k_done; ++k) {
        if (!(lrs_us_[k][c] == lrs_us_[k][c])) continue;  // not read (failed earlier)
        csv.integer(c).integer(cells_[c].row).integer(cells_[c].col).integer(initial_pulses_[c]);
        csv.integer(k).integer(read_cycles_[k]);
        csv.number(lrs_us_[k][c], "%.4f").number(hrs_us_[k][c], "%.4f");
        csv.integer(lrs_us_[k][c] >= options_.window_factor * hrs_us_[k][c] ? 1 : 0).end_row();
      }
    }
    common::write_file_atomically(dir / "endurance.csv", csv.str());
  }
  const std::string who =
      record.board.serial + ", chip " + record.chip_id + ", " + std::to_string(n) + " cells";
  const std::vector<double> x(read_cycles_.begin(), read_cycles_.end());
  plot_error = plot_levels(window_plot(record), dir / "endurance.png");

  // Survival: the share of the fitted cells (dead on arrival left out) alive at each read point,
  // and the fitted log-normal at the median initial pulse count.
  LevelPlot survival;
  survival.title = "Endurance survival: " + who;
  survival.x_label = "SET/RESET cycles";
  survival.y_label = "Surviving fraction of cells";
  survival.log_x = true;
  survival.key_title = "Cells";
  LevelCurve measured;
  measured.level = 0;
  measured.label = "measured";
  std::size_t fitted = 0;
  for (const auto& p : failed) fitted += !(p && *p == 0);
  for (std::size_t k = 0; k < k_done && fitted > 0; ++k) {
    std::size_t dead = 0;
    for (const auto& p : failed) dead += p && *p > 0 && *p <= k;
    measured.x.push_back(x[k]);
    measured.median.push_back(1.0 - static_cast<double>(dead) / static_cast<double>(fitted));
  }
  if (f && k_done > 0) {
    std::vector<double> p0(initial_pulses_.begin(), initial_pulses_.end());
    const double offset = quantile_of(p0, 0.5);
    const double mu = std::log(f->median_pulses.value), sigma = f->sigma_ln.value;
    const double last = x[k_done - 1];
    for (int i = 0; i <= 100; ++i) {
      const double c = std::pow(last, i / 100.0);
      measured.fit_x.push_back(c);
      measured.fit_y.push_back(upper_tail((std::log(offset + 2 * c) - mu) / sigma));
    }
    measured.label = "measured; dashed: log-normal fit";
  }
  survival.curves.push_back(std::move(measured));
  const std::string survival_error = plot_levels(survival, dir / "endurance_survival.png");
  if (plot_error.empty()) plot_error = survival_error;

  json result = {
      {"files", {"endurance.h5", "endurance.csv", "endurance.png", "endurance_survival.png"}},
      {"cells", n},
      {"unformed_in_region", unformed_in_region_},
      {"set_level", set_level_},
      {"cycles_done", cycles_done_},
      {"cycles_planned", options_.cycles},
      {"read_points", k_done},
      {"alive", alive_count()},
      {"failed", std::count(status.begin(), status.end(), 1)},
      {"dead_on_arrival", std::count(status.begin(), status.end(), 2)}};
  if (f) {
    const std::string pulses_note =
        "SET + RESET pulses to failure (the cell's earlier pulses included), log-normal maximum "
        "likelihood with interval censoring between read points and right censoring of the "
        "cells alive at the end";
    result["fit"] = {{"cells", f->cells},
                     {"failed", f->failed},
                     {"censored", f->censored},
                     {"dead_on_arrival", f->dead_on_arrival},
                     {"stuck_high", f->stuck_high},
                     {"stuck_low", f->stuck_low},
                     {"median_pulses", estimate_json(f->median_pulses, pulses_note)},
                     {"median_cycles", f->median_cycles},
                     {"sigma_ln", estimate_json(f->sigma_ln, pulses_note)},
                     {"stuck_hcs_probability",
                      estimate_json(f->stuck_hcs_probability,
                                    "share of the failed cells stuck high (binomial error)")}};
    result["calibration"] = {
        {"/endurance/median_cycles",
         estimate_json(f->median_pulses,
                       "median " + pulses_note + "; in cycles: " + cycles_text(f->median_cycles))},
        {"/endurance/sigma_ln", estimate_json(f->sigma_ln, "sigma of ln(pulses to failure)")},
        {"/endurance/stuck_hcs_probability",
         estimate_json(f->stuck_hcs_probability,
                       "failed cells whose G at failure is nearer the LRS than the HRS")}};
  }
  return result;
}

}  // namespace metaplast::bench
