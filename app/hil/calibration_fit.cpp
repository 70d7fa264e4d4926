#include "app/hil/calibration_fit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "app/util/statistics.hpp"

namespace metaplast::hil {

namespace {

// Conductances go into ln G for the LCS; a read floored at 0 would give -inf.
constexpr double kMinLogConductanceUs = 1e-6;

double transform(double g_us, bool log_normal) {
  return log_normal ? std::log(std::max(g_us, kMinLogConductanceUs)) : g_us;
}

std::string level_name(const LevelSamples& s) {
  return s.level == 0 ? std::string("level 0 (LCS)") : "level " + std::to_string(s.level);
}

struct WithinStats {
  double pooled_variance = 0;       // pooled within-group variance
  std::vector<double> group_means;  // one per group
  std::size_t groups = 0, per_group = 0;
};

// Pooled within-group variance and the group means of transformed values. Every group must have
// the same size >= 2.
WithinStats within_stats(const std::vector<std::vector<double>>& groups, bool log_normal,
                         const std::string& what) {
  WithinStats out;
  out.groups = groups.size();
  out.per_group = groups.empty() ? 0 : groups.front().size();
  double ss = 0;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const auto& g = groups[i];
    if (g.size() != out.per_group) {
      throw std::invalid_argument(what + ": cell " + std::to_string(i) + " has " +
                                  std::to_string(g.size()) + " samples, cell 0 has " +
                                  std::to_string(out.per_group) +
                                  " (every cell needs the same number)");
    }
    double mean = 0;
    for (double v : g) mean += transform(v, log_normal);
    mean /= static_cast<double>(g.size());
    for (double v : g) {
      const double d = transform(v, log_normal) - mean;
      ss += d * d;
    }
    out.group_means.push_back(mean);
  }
  const double dof = static_cast<double>(out.groups) * (static_cast<double>(out.per_group) - 1.0);
  out.pooled_variance = dof > 0 ? ss / dof : 0.0;
  return out;
}

std::vector<double> cell_means(const LevelSamples& s) {
  std::vector<double> means;
  means.reserve(s.by_cell.size());
  for (const auto& c : s.by_cell) {
    double m = 0;
    for (double v : c) m += transform(v, s.log_normal());
    means.push_back(c.empty() ? 0.0 : m / static_cast<double>(c.size()));
  }
  return means;
}

// Weighted least squares of y = a + b x with weights w; returns false if singular.
bool weighted_line(const std::vector<double>& x, const std::vector<double>& y,
                   const std::vector<double>& w, double& a, double& b) {
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sw += w[i];
    sx += w[i] * x[i];
    sy += w[i] * y[i];
    sxx += w[i] * x[i] * x[i];
    sxy += w[i] * x[i] * y[i];
  }
  const double det = sw * sxx - sx * sx;
  if (x.size() < 2 || std::abs(det) <= 1e-12 * std::max(1.0, sw * sxx)) return false;
  a = (sxx * sy - sx * sxy) / det;
  b = (sw * sxy - sx * sy) / det;
  return true;
}

}  // namespace

double median_of(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  const auto mid = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), mid, values.end());
  if (values.size() % 2 == 1) return *mid;
  const double upper = *mid;
  const double lower = *std::max_element(values.begin(), mid);
  return 0.5 * (lower + upper);
}

LevelFit fit_level(const LevelSamples& s) {
  const std::string where = "fit of " + level_name(s);
  if (s.by_cell.size() < 2) {
    throw std::invalid_argument(where + ": need at least 2 cells, got " +
                                std::to_string(s.by_cell.size()));
  }
  if (s.by_cell.front().size() < 2) {
    throw std::invalid_argument(where +
                                ": need at least 2 cycles per cell to separate the "
                                "cycle-to-cycle from the device-to-device spread, got " +
                                std::to_string(s.by_cell.front().size()));
  }
  LevelFit f;
  f.level = s.level;
  f.icc_ua = s.icc_ua;
  f.gate_voltage_v = s.gate_voltage_v;
  f.log_normal = s.log_normal();

  const auto within = within_stats(s.by_cell, f.log_normal, where);
  f.cells = within.groups;
  f.cycles = within.per_group;
  std::vector<double> all;
  all.reserve(f.cells * f.cycles);
  for (const auto& c : s.by_cell) all.insert(all.end(), c.begin(), c.end());
  f.median_us = median_of(std::move(all));
  if (f.log_normal && !(f.median_us > 0)) {
    throw std::invalid_argument(where + ": the LCS samples' median is not positive (" +
                                std::to_string(f.median_us) + " uS): are the cells formed?");
  }
  f.within_sigma = std::sqrt(within.pooled_variance);
  const double means_variance = util::sample_variance(within.group_means);
  f.cell_means_sigma = std::sqrt(means_variance);

  double read_variance = 0;
  if (!s.read_repeats.empty() && s.read_repeats.front().size() >= 2) {
    const auto reads = within_stats(s.read_repeats, f.log_normal, where + " (read repeats)");
    read_variance = reads.pooled_variance;
    f.read_sigma = std::sqrt(read_variance);
    f.read_measured = true;
    f.read_cells = reads.groups;
    f.read_repeats = reads.per_group;
  }
  f.c2c_sigma = std::sqrt(std::max(0.0, within.pooled_variance - read_variance));
  // The cell means still carry 1/K of the per-sample variance (c2c and read noise).
  const double d2d_variance =
      means_variance - within.pooled_variance / static_cast<double>(f.cycles);
  f.d2d_sigma = std::sqrt(std::max(0.0, d2d_variance));
  return f;
}

CalibrationFit fit_calibration(const std::vector<LevelSamples>& levels) {
  CalibrationFit fit;
  for (const auto& s : levels) fit.levels.push_back(fit_level(s));

  // Read noise: sigma = relative * G + absolute, fitted on every repeatedly-read cell (its mean
  // G, its read sigma), not on level averages: within a level the cells' G differ (the LCS by a
  // factor of ~2), and averaging sigma over them would bias the line. Weighted by the model's
  // 1/sigma^2 (relative errors count), iterated.
  std::vector<double> g, sigma, w;
  std::size_t levels_used = 0;
  for (std::size_t l = 0; l < levels.size(); ++l) {
    const auto& reps = levels[l].read_repeats;
    if (reps.empty() || reps.front().size() < 2) continue;
    ++levels_used;
    const double n = static_cast<double>(reps.front().size());
    // E[s] = c4 sigma for n Gaussian samples.
    const double c4 =
        std::sqrt(2.0 / (n - 1.0)) * std::exp(std::lgamma(n / 2.0) - std::lgamma((n - 1.0) / 2.0));
    const double level_sigma_us = fit.levels[l].log_normal
                                      ? fit.levels[l].median_us * fit.levels[l].read_sigma
                                      : fit.levels[l].read_sigma;
    for (const auto& cell : reps) {
      double mean = 0;
      for (double v : cell) mean += v;
      mean /= n;
      double ss = 0;
      for (double v : cell) ss += (v - mean) * (v - mean);
      g.push_back(mean);
      sigma.push_back(std::sqrt(ss / (n - 1.0)) / c4);
      w.push_back(1.0 / std::max(level_sigma_us * level_sigma_us, 1e-12));
    }
  }
  if (!g.empty()) {
    double a = 0, b = 0;
    bool line = levels_used >= 2 && weighted_line(g, sigma, w, a, b);
    for (int iteration = 0; line && iteration < 3 && a >= 0 && b >= 0; ++iteration) {
      for (std::size_t i = 0; i < g.size(); ++i) {
        const double model = std::max(a + b * g[i], 1e-6);
        w[i] = 1.0 / (model * model);
      }
      line = weighted_line(g, sigma, w, a, b);
    }
    if (line && a >= 0 && b >= 0) {
      fit.read_noise = {true, b, a, levels_used};
    } else if (line && b < 0) {
      // No growth with G: a constant floor.
      double sum = 0, sw = 0;
      for (std::size_t i = 0; i < g.size(); ++i) {
        sum += w[i] * sigma[i];
        sw += w[i];
      }
      fit.read_noise = {true, 0.0, sum / sw, levels_used};
    } else {
      // No floor (a < 0) or a single level: sigma = relative * G.
      double num = 0, den = 0;
      for (std::size_t i = 0; i < g.size(); ++i) {
        num += w[i] * sigma[i] * g[i];
        den += w[i] * g[i] * g[i];
      }
      fit.read_noise = {true, den > 0 ? num / den : 0.0, 0.0, levels_used};
    }
  }

  // c2c line across the HCS levels (unweighted).
  std::vector<double> x, y, ones;
  for (const auto& f : fit.levels) {
    if (f.log_normal) continue;
    x.push_back(f.median_us);
    y.push_back(f.c2c_sigma);
    ones.push_back(1.0);
  }
  double a = 0, b = 0;
  if (weighted_line(x, y, ones, a, b)) fit.c2c_line = {a, b, true};
  return fit;
}

std::vector<CellFinding> screen_cells(const std::vector<LevelSamples>& levels, double outlier_z) {
  std::vector<CellFinding> findings;
  if (levels.empty()) return findings;
  const std::size_t n = levels.front().by_cell.size();
  std::vector<bool> flagged(n, false);
  auto flag = [&](std::size_t cell, std::string reason, std::string detail) {
    if (cell >= n || flagged[cell]) return;
    flagged[cell] = true;
    findings.push_back({cell, std::move(reason), std::move(detail)});
  };

  // Stuck cells: compare with the midpoint between the LCS and the lowest HCS level (in G).
  const LevelSamples* lcs = nullptr;
  const LevelSamples* lowest = nullptr;
  const LevelSamples* highest = nullptr;
  for (const auto& s : levels) {
    if (s.by_cell.size() != n) {
      throw std::invalid_argument(
          "screen_cells: " + level_name(s) + " has " + std::to_string(s.by_cell.size()) +
          " cells, level " + std::to_string(levels.front().level) + " has " + std::to_string(n));
    }
    if (s.level == 0) lcs = &s;
    if (s.level > 0 && (!lowest || s.level < lowest->level)) lowest = &s;
    if (s.level > 0 && (!highest || s.level > highest->level)) highest = &s;
  }
  if (lcs && lowest) {
    std::vector<double> lcs_g, low_g;
    for (const auto& c : lcs->by_cell) lcs_g.insert(lcs_g.end(), c.begin(), c.end());
    for (const auto& c : lowest->by_cell) low_g.insert(low_g.end(), c.begin(), c.end());
    const double midpoint = 0.5 * (median_of(lcs_g) + median_of(low_g));
    auto mean_g = [](const std::vector<double>& v) {
      double m = 0;
      for (double x : v) m += x;
      return v.empty() ? 0.0 : m / static_cast<double>(v.size());
    };
    for (std::size_t i = 0; i < n; ++i) {
      std::ostringstream d;
      const double top = mean_g(highest->by_cell[i]);
      const double bottom = mean_g(lcs->by_cell[i]);
      if (top < midpoint) {
        d << "mean " << top << " uS after SET to level " << highest->level << ", below " << midpoint
          << " uS: does not SET";
        flag(i, "stuck_lcs", d.str());
      } else if (bottom > midpoint) {
        d << "mean " << bottom << " uS after RESET, above " << midpoint << " uS: does not RESET";
        flag(i, "stuck_hcs", d.str());
      }
    }
  }

  // Outliers among the cell means, level by level (robust centre and scale).
  for (const auto& s : levels) {
    const auto means = cell_means(s);
    const double centre = median_of(means);
    std::vector<double> deviations;
    deviations.reserve(means.size());
    for (double m : means) deviations.push_back(std::abs(m - centre));
    const double scale = 1.4826 * median_of(deviations);
    if (!(scale > 0)) continue;
    for (std::size_t i = 0; i < n; ++i) {
      const double z = (means[i] - centre) / scale;
      if (std::abs(z) > outlier_z) {
        std::ostringstream d;
        d << level_name(s) << ": cell mean " << (s.log_normal() ? std::exp(means[i]) : means[i])
          << " uS is " << z << " robust sigmas from the median of the cell means";
        flag(i, "outlier", d.str());
      }
    }
  }
  std::sort(findings.begin(), findings.end(),
            [](const CellFinding& a, const CellFinding& b) { return a.cell < b.cell; });
  return findings;
}

std::vector<LevelSamples> without_cells(const std::vector<LevelSamples>& levels,
                                        const std::vector<std::size_t>& excluded) {
  const std::set<std::size_t> drop(excluded.begin(), excluded.end());
  std::vector<LevelSamples> out;
  out.reserve(levels.size());
  for (const auto& s : levels) {
    LevelSamples t;
    t.level = s.level;
    t.icc_ua = s.icc_ua;
    t.gate_voltage_v = s.gate_voltage_v;
    for (std::size_t i = 0; i < s.by_cell.size(); ++i) {
      if (!drop.count(i)) t.by_cell.push_back(s.by_cell[i]);
    }
    for (std::size_t j = 0; j < s.read_repeats.size(); ++j) {
      if (!drop.count(j)) t.read_repeats.push_back(s.read_repeats[j]);
    }
    out.push_back(std::move(t));
  }
  return out;
}

devices::Calibration to_calibration(const CalibrationFit& fit, const devices::Calibration& base,
                                    const devices::CalibrationIdentity& identity,
                                    const instruments::BoardSettings& settings) {
  devices::Calibration c = base;
  c.identity = identity;
  c.read_voltage_v = settings.read_voltage_v;
  auto& sw = c.switching;
  const auto effective = [&](double volts, double width_ns) {
    return volts + sw.width_v_per_decade * std::log10(width_ns / sw.reference_width_ns);
  };
  sw.set_reference_bl_v = std::max(
      sw.set_threshold_bl_v, effective(settings.set_bl_voltage_v, settings.set_pulse_width_ns));
  sw.reset_reference_sl_v =
      std::max(sw.reset_threshold_sl_v,
               effective(settings.reset_sl_voltage_v, settings.reset_pulse_width_ns));
  c.hcs_levels.clear();
  bool have_lcs = false;
  for (std::size_t i = 0; i < fit.levels.size(); ++i) {
    const auto& f = fit.levels[i];
    if (f.level != static_cast<int>(i)) {
      throw std::invalid_argument(
          "to_calibration: fitted levels must be 0 (LCS), 1, 2, ... in "
          "order; entry " +
          std::to_string(i) + " is level " + std::to_string(f.level));
    }
    if (f.log_normal) {
      c.lcs.median_conductance_us = f.median_us;
      c.lcs.c2c_sigma_ln = f.c2c_sigma;
      c.lcs.d2d_sigma_ln = f.d2d_sigma;
      have_lcs = true;
    } else {
      devices::HcsLevel h;
      h.icc_ua = f.icc_ua;
      h.gate_voltage_v = f.gate_voltage_v;
      h.median_conductance_us = f.median_us;
      h.c2c_sigma_us = f.c2c_sigma;
      h.d2d_sigma_rel = f.d2d_sigma_rel();
      c.hcs_levels.push_back(h);
    }
  }
  if (!have_lcs || c.hcs_levels.empty()) {
    throw std::invalid_argument(
        "to_calibration: the fit needs the LCS (level 0) and at least one HCS level");
  }
  if (fit.read_noise.measured) {
    c.read_noise.relative = fit.read_noise.relative;
    c.read_noise.absolute_us = fit.read_noise.absolute_us;
  }
  c.validate("fitted calibration");
  return c;
}

}  // namespace metaplast::hil
