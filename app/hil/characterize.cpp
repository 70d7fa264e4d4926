#include "app/hil/characterize.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "app/util/csv.hpp"
#include "app/util/gnuplot.hpp"
#include "common/atomic_file.hpp"
#include "common/clock.hpp"
#include "devices/random.hpp"
#include "instruments/board_settings.hpp"

namespace metaplast::hil {

namespace in = metaplast::instruments;
using nlohmann::json;

namespace {

// splitmix64: a small, portable generator (std::shuffle's result differs between libraries).
struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() { return devices::RandomStream::mix64(state += devices::RandomStream::kGolden); }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

std::string level_label(const LevelSamples& s) {
  std::ostringstream o;
  if (s.level == 0) {
    o << "LCS, after RESET";
  } else {
    o << "I_CC " << std::fixed << std::setprecision(0) << s.icc_ua << " uA";
  }
  return o.str();
}

std::vector<double> conductances(const std::vector<in::CellReading>& readings) {
  std::vector<double> g;
  g.reserve(readings.size());
  for (const auto& r : readings) g.push_back(r.conductance_us);
  return g;
}

}  // namespace

void check_options(const CharacterizeOptions& o) {
  if (o.cells < 2) {
    throw std::invalid_argument(
        "--cells must be at least 2 (a device-to-device spread needs "
        "several cells), got " +
        std::to_string(o.cells));
  }
  if (o.cycles < 2) {
    throw std::invalid_argument(
        "--cycles must be at least 2: K >= 2 programming cycles per cell are needed to separate "
        "the cycle-to-cycle from the device-to-device spread, got " +
        std::to_string(o.cycles));
  }
  const auto too_many = [](const char* option, std::size_t value, std::int64_t max) {
    if (value > static_cast<std::size_t>(max)) {
      throw std::invalid_argument(std::string(option) + " must be at most " + std::to_string(max) +
                                  ", got " + std::to_string(value));
    }
  };
  too_many("--cells", o.cells, kMaxCharacterizeCells);
  too_many("--cycles", o.cycles, kMaxCharacterizeCycles);
  too_many("--read-repeats", o.read_repeats, kMaxReadRepeats);
  too_many("--read-cells", o.read_cells, kMaxCharacterizeCells);
  if (o.read_repeats == 1) {
    throw std::invalid_argument(
        "--read-repeats must be 0 (no read-noise measurement) or at "
        "least 2, got 1");
  }
  if (o.read_repeats > 0 && o.read_cells < 2) {
    throw std::invalid_argument("--read-cells must be at least 2 when --read-repeats is set, got " +
                                std::to_string(o.read_cells));
  }
  if (o.chunk_cells < 1) throw std::invalid_argument("chunk_cells must be at least 1");
  if (!(o.formed_threshold_us >= 0) || !std::isfinite(o.formed_threshold_us)) {
    throw std::invalid_argument("the formed threshold must be a conductance >= 0 uS");
  }
}

CellScan scan_cells(in::ArrayBoard& board, double threshold_us,
                    const std::set<std::uint32_t>& excluded_cells) {
  CellScan scan;
  scan.threshold_us = threshold_us;
  const auto map = board.read_array();
  for (std::uint16_t r = 0; r < map.rows; ++r) {
    for (std::uint16_t c = 0; c < map.cols; ++c) {
      const in::Cell cell{static_cast<std::uint16_t>(map.row0 + r),
                          static_cast<std::uint16_t>(map.col0 + c)};
      const auto index = static_cast<std::uint32_t>(cell.row) * board.info().cols + cell.col;
      if (map.at_us(cell.row, cell.col) < threshold_us) {
        scan.unformed.push_back(cell);
      } else if (excluded_cells.count(index)) {
        scan.excluded.push_back(cell);
      } else {
        scan.formed.push_back(cell);
      }
    }
  }
  return scan;
}

Characterization run_characterization(in::ArrayBoard& board, const CharacterizeOptions& o) {
  check_options(o);
  const auto& info = board.info();
  if (info.levels.size() < 2) {
    throw std::runtime_error("the board reports " + std::to_string(info.levels.size()) +
                             " programming levels; characterisation needs the LCS and at least "
                             "one I_CC level");
  }
  Characterization data;
  data.board = info;
  data.started = common::utc_now_iso8601();
  data.settings = board.settings();
  data.cycles = o.cycles;
  data.seed = o.seed;
  const double threshold =
      o.formed_threshold_us > 0 ? o.formed_threshold_us : 0.2 * board.level_conductance_us(0);
  data.scan = scan_cells(board, threshold, o.excluded_cells);
  if (data.scan.formed.size() < o.cells) {
    std::ostringstream m;
    m << "--cells " << o.cells << " but only " << data.scan.formed.size() << " of " << info.cells()
      << " cells read as formed (>= " << threshold << " uS)";
    if (!data.scan.excluded.empty()) {
      m << " and usable (" << data.scan.excluded.size() << " more are in the chip's bad-cell map)";
    }
    m << "; " << data.scan.unformed.size()
      << " read as unformed. Ask for fewer cells, or form the chip first with an explicit "
         "`metaplast board form --device "
      << board.address() << "` (characterize never forms cells)";
    throw std::invalid_argument(m.str());
  }

  // A seeded random subset of the formed cells (partial Fisher-Yates).
  auto pool = data.scan.formed;
  SplitMix64 rng{o.seed};
  for (std::size_t i = 0; i < o.cells; ++i)
    std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
  data.cells.assign(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(o.cells));
  data.read_repeats = o.read_repeats;
  data.read_cells = o.read_repeats > 0 ? std::min(o.read_cells, o.cells) : 0;
  const std::vector<in::Cell> read_subset(
      data.cells.begin(), data.cells.begin() + static_cast<std::ptrdiff_t>(data.read_cells));
  data.pulses_per_cell.assign(o.cells, 0);

  const auto top_level = static_cast<in::Level>(info.levels.size() - 1);
  const std::size_t steps_total =
      info.levels.size() * o.cycles + (data.read_cells ? info.levels.size() : 0);
  std::size_t steps_done = 0;
  for (std::size_t level = 0; level < info.levels.size(); ++level) {
    const auto start = std::chrono::steady_clock::now();
    LevelSamples s;
    s.level = static_cast<int>(level);
    s.icc_ua = level == 0 ? 0.0 : info.levels[level].icc_ua;
    s.gate_voltage_v = level == 0 ? 0.0 : info.levels[level].gate_voltage_v;
    s.by_cell.assign(o.cells, std::vector<double>(o.cycles, 0.0));
    for (std::size_t k = 0; k < o.cycles; ++k) {
      // In chunks, so every cell is read soon after its own pulse (relaxation drifts ~ ln t).
      for (std::size_t first = 0; first < o.cells; first += o.chunk_cells) {
        const std::size_t last = std::min(o.cells, first + o.chunk_cells);
        const std::vector<in::Cell> chunk(data.cells.begin() + static_cast<std::ptrdiff_t>(first),
                                          data.cells.begin() + static_cast<std::ptrdiff_t>(last));
        if (level == 0) {
          // An LCS sample is the RESET of a full SET (a switching cycle, as in operation).
          board.set(chunk, top_level);
          board.reset(chunk);
        } else {
          // A SET on a cell already in HCS would keep the stronger filament: RESET first.
          board.reset(chunk);
          board.set(chunk, static_cast<in::Level>(level));
        }
        const auto g = conductances(board.read(chunk));
        for (std::size_t i = first; i < last; ++i) {
          s.by_cell[i][k] = g[i - first];
          data.pulses_per_cell[i] += 2;
        }
      }
      ++steps_done;
      if (o.progress) o.progress({steps_done, steps_total, s.level});
    }
    if (data.read_cells > 0) {
      // The subset keeps the state of the last cycle: only reads from here on.
      s.read_repeats.assign(data.read_cells, std::vector<double>(o.read_repeats, 0.0));
      for (std::size_t r = 0; r < o.read_repeats; ++r) {
        const auto g = conductances(board.read(read_subset));
        for (std::size_t j = 0; j < data.read_cells; ++j) s.read_repeats[j][r] = g[j];
      }
      ++steps_done;
      if (o.progress) o.progress({steps_done, steps_total, s.level});
    }
    if (o.log) {
      std::vector<double> all;
      for (const auto& c : s.by_cell) all.insert(all.end(), c.begin(), c.end());
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::ostringstream line;
      line << "level " << level << " (" << level_label(s) << "): " << o.cycles << " cycles x "
           << o.cells << " cells, median " << std::fixed << std::setprecision(2) << median_of(all)
           << " uS, " << std::setprecision(1) << seconds << " s";
      o.log(line.str());
    }
    data.levels.push_back(std::move(s));
    if (o.levels_done) o.levels_done(data.levels);
  }
  data.finished = common::utc_now_iso8601();
  return data;
}

CharacterizationResult fit_characterization(const Characterization& data,
                                            const devices::Calibration& base,
                                            const devices::CalibrationIdentity& identity,
                                            double outlier_z) {
  CharacterizationResult result;
  result.bad_cells = screen_cells(data.levels, outlier_z);
  std::vector<std::size_t> excluded;
  for (const auto& b : result.bad_cells) excluded.push_back(b.cell);
  const auto kept = without_cells(data.levels, excluded);
  if (kept.empty() || kept.front().by_cell.size() < 2) {
    throw std::runtime_error("only " +
                             std::to_string(kept.empty() ? 0 : kept.front().by_cell.size()) +
                             " of " + std::to_string(data.cells.size()) +
                             " cells behaved normally (the rest are stuck or outliers): nothing "
                             "to fit; is the chip formed and switching?");
  }
  result.fit = fit_calibration(kept);
  result.calibration = to_calibration(result.fit, base, identity, data.settings);
  return result;
}

// The CSVs are built in memory and written whole: a full disk leaves no truncated file.
void write_samples_csv(const Characterization& data, const std::filesystem::path& path) {
  const std::uint16_t cols = data.board.cols;
  util::CsvWriter csv({"board settings: " + instruments::settings_line(data.settings)},
                      {"cell", "row", "col", "cycle", "level", "icc_ua", "conductance_us"});
  for (const auto& s : data.levels) {
    for (std::size_t i = 0; i < data.cells.size(); ++i) {
      const auto& cell = data.cells[i];
      const unsigned index = static_cast<unsigned>(cell.row) * cols + cell.col;
      for (std::size_t k = 0; k < s.by_cell[i].size(); ++k) {
        csv.integer(index).integer(cell.row).integer(cell.col).integer(k).integer(s.level);
        csv.number(s.icc_ua, "%.1f").number(s.by_cell[i][k], "%.4f").end_row();
      }
    }
  }
  common::write_file_atomically(path, csv.str());
}

void write_cdf_csv(const Characterization& data, const std::filesystem::path& path) {
  util::CsvWriter csv({"board settings: " + instruments::settings_line(data.settings)},
                      {"level", "icc_ua", "conductance_us", "cumulative_fraction"});
  for (const auto& s : data.levels) {
    std::vector<double> all;
    for (const auto& c : s.by_cell) all.insert(all.end(), c.begin(), c.end());
    std::sort(all.begin(), all.end());
    const double n = static_cast<double>(all.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
      csv.integer(s.level).number(s.icc_ua, "%.1f").number(all[i], "%.4f");
      csv.number((static_cast<double>(i) + 0.5) / n, "%.6f").end_row();
    }
  }
  common::write_file_atomically(path, csv.str());
}

std::string cdf_gnuplot_script(const Characterization& data, const std::filesystem::path& plot_data,
                               const std::filesystem::path& png) {
  double lo = 1e300, hi = 0;
  for (const auto& s : data.levels) {
    for (const auto& c : s.by_cell) {
      for (double g : c) {
        if (g > 0) lo = std::min(lo, g);
        hi = std::max(hi, g);
      }
    }
  }
  if (!(hi > 0)) {
    lo = 0.1;
    hi = 1000;
  }
  // A little margin around the data, with 1-2-5 ticks so both ends carry labels.
  const double x_min = lo / 1.3, x_max = hi * 1.3;
  std::ostringstream tics;
  for (double decade = std::pow(10.0, std::floor(std::log10(x_min))); decade <= x_max;
       decade *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double t = m * decade;
      if (t < x_min || t > x_max) continue;
      char label[32];
      std::snprintf(label, sizeof label, "%g", t);  // "0.5", "1e-05": never "0.000010"
      tics << (tics.tellp() > 0 ? ", " : "") << "'" << label << "' " << label;
    }
  }
  // Nine distinguishable colours (gnuplot's default cycle repeats after eight).
  static const char* kColours[] = {"#000000", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
  std::ostringstream g;
  // Names relative to the script's folder: `gnuplot cdf.gp` re-draws the plot run there.
  g << "# Draw with `gnuplot "
    << "cdf.gp` in this folder.\n"
    << "set terminal pngcairo size 1100,720 enhanced font 'DejaVu Sans,12'\n"
    << "set output " << util::gnuplot_quote(png.filename().string()) << "\n"
    << "set key outside right top title 'Level' box\n"
    << "set logscale x\n"
    << "set xrange [" << x_min << ":" << x_max << "]\n"
    << "set xtics (" << tics.str() << ")\n"
    << "set yrange [0:1]\n"
    << "set grid xtics ytics lc rgb '#dddddd'\n"
    << "set xlabel 'Conductance G (µS), read at " << data.settings.read_voltage_v << " V'\n"
    << "set ylabel 'Cumulative fraction of samples'\n"
    << "set title "
    << util::gnuplot_quote_text(
           "Conductance CDF per programming level: " + std::to_string(data.cells.size()) +
           " cells x " + std::to_string(data.cycles) + " cycles, board " + data.board.model + " " +
           data.board.serial)
    << "\n"
    << "plot \\\n";
  for (std::size_t i = 0; i < data.levels.size(); ++i) {
    const auto& s = data.levels[i];
    std::ostringstream title;
    if (s.level == 0) {
      title << "LCS (RESET)";
    } else {
      title << "L" << s.level << ": I_{CC} " << std::fixed << std::setprecision(0) << s.icc_ua
            << " µA";
    }
    g << "  " << util::gnuplot_quote(plot_data.filename().string()) << " index " << i
      << " using 1:2 with lines lw 2 lc rgb '" << kColours[i % 10] << "' title "
      << util::gnuplot_quote(title.str()) << (i + 1 < data.levels.size() ? ", \\\n" : "\n");
  }
  return g.str();
}

std::string plot_cdf(const Characterization& data, const std::filesystem::path& png) {
  // The plot needs at most a few thousand points per curve: every sample would make gnuplot
  // slow on large campaigns (cdf.csv keeps them all).
  constexpr std::size_t kPointsPerLevel = 2000;
  const auto plot_data = png.parent_path() / "cdf_plot.dat";
  {
    std::ostringstream out;
    char buf[64];
    for (const auto& s : data.levels) {
      std::vector<double> all;
      for (const auto& c : s.by_cell) all.insert(all.end(), c.begin(), c.end());
      std::sort(all.begin(), all.end());
      const std::size_t n = all.size();
      const std::size_t step = std::max<std::size_t>(1, n / kPointsPerLevel);
      out << "# level " << s.level << "\n";
      for (std::size_t i = 0; i < n; i += step) {
        std::snprintf(buf, sizeof buf, "%.4f %.6f\n", all[i], (static_cast<double>(i) + 0.5) / n);
        out << buf;
      }
      if (n > 0 && (n - 1) % step != 0) {
        std::snprintf(buf, sizeof buf, "%.4f %.6f\n", all[n - 1], (n - 0.5) / n);
        out << buf;
      }
      out << "\n\n";
    }
    common::write_file_atomically(plot_data, out.str());
  }
  const auto script_path = png.parent_path() / "cdf.gp";
  common::write_file_atomically(script_path, cdf_gnuplot_script(data, plot_data, png));
  std::filesystem::remove(png);
  std::string error = util::run_gnuplot(script_path);
  std::error_code ec;
  if (error.empty() && std::filesystem::file_size(png, ec) == 0) {
    error = "gnuplot wrote no " + png.string() + " (disk full?)";
  }
  if (!error.empty()) std::filesystem::remove(png, ec);  // never a half-drawn picture
  return error;
}

void write_calibration(const Characterization& data, const CharacterizationResult& result,
                       const std::filesystem::path& path) {
  json doc = json::parse(devices::calibration_to_json(result.calibration));
  json c;
  c["started"] = data.started;
  c["finished"] = data.finished;
  c["board_settings"] = instruments::settings_to_json(data.settings);
  c["cells"] = data.cells.size();
  c["cycles"] = data.cycles;
  c["seed"] = data.seed;
  c["read_noise_cells"] = data.read_cells;
  c["read_noise_repeats"] = data.read_repeats;
  c["formed_threshold_us"] = data.scan.threshold_us;
  c["cells_formed"] = data.scan.formed.size() + data.scan.excluded.size();
  c["cells_unformed"] = data.scan.unformed.size();
  c["cells_excluded_known_bad"] = data.scan.excluded.size();
  c["board_firmware"] = data.board.firmware_version;
  c["board_boot_id"] = data.board.boot_id;
  json levels = json::array();
  for (const auto& f : result.fit.levels) {
    levels.push_back({{"level", f.level},
                      {"icc_ua", f.icc_ua},
                      {"units", f.log_normal ? "ln" : "uS"},
                      {"cells", f.cells},
                      {"cycles", f.cycles},
                      {"median_us", f.median_us},
                      {"within_cell_sigma", f.within_sigma},
                      {"cell_means_sigma", f.cell_means_sigma},
                      {"read_sigma", f.read_measured ? json(f.read_sigma) : json(nullptr)},
                      {"c2c_sigma", f.c2c_sigma},
                      {"d2d_sigma", f.d2d_sigma}});
  }
  c["levels"] = levels;
  if (result.fit.c2c_line.valid) {
    c["c2c_line"] = {{"intercept_us", result.fit.c2c_line.intercept_us},
                     {"slope", result.fit.c2c_line.slope}};
  }
  json bad = json::array();
  for (const auto& b : result.bad_cells) {
    const auto& cell = data.cells[b.cell];
    bad.push_back(
        {{"row", cell.row}, {"col", cell.col}, {"reason", b.reason}, {"detail", b.detail}});
  }
  c["bad_cells"] = bad;
  json not_measured = {"relaxation", "endurance", "yield",       "pristine",
                       "forming",    "switching", "read_disturb"};
  if (!result.fit.read_noise.measured) not_measured.push_back("read");
  c["not_measured_copied_from_base"] = not_measured;
  doc["characterization"] = c;
  common::write_file_atomically(path, doc.dump(2) + "\n");
}

live::Plot cdf_plot(const std::vector<LevelSamples>& levels, const std::string& title,
                    std::size_t points) {
  live::Plot plot;
  plot.title = title;
  plot.x_label = "Conductance G (µS)";
  plot.y_label = "Cumulative fraction of samples";
  plot.log_x = true;
  for (const auto& s : levels) {
    std::vector<double> all;
    for (const auto& c : s.by_cell) all.insert(all.end(), c.begin(), c.end());
    std::sort(all.begin(), all.end());
    live::PlotSeries curve;
    curve.label = "level " + std::to_string(s.level) + " (" + level_label(s) + ")";
    curve.group = s.level;
    const std::size_t n = all.size(), shown = std::min(n, std::max<std::size_t>(points, 2));
    for (std::size_t k = 0; k < shown; ++k) {
      // Sample i of n at (i + 0.5) / n, as cdf.csv.
      const std::size_t i = shown > 1 ? k * (n - 1) / (shown - 1) : 0;
      curve.x.push_back(all[i]);
      curve.y.push_back((static_cast<double>(i) + 0.5) / static_cast<double>(n));
    }
    plot.series.push_back(std::move(curve));
  }
  return plot;
}

std::string summary_table(const CharacterizationResult& result) {
  std::ostringstream o;
  o << "level  I_CC(uA)  median(uS)  c2c sigma     d2d sigma      read sigma\n";
  for (const auto& f : result.fit.levels) {
    char line[160];
    if (f.log_normal) {
      std::snprintf(line, sizeof line, "%5d  %8s  %10.3f  %6.4f (ln)   %6.4f (ln)    %s\n", f.level,
                    "LCS", f.median_us, f.c2c_sigma, f.d2d_sigma,
                    f.read_measured ? (std::to_string(f.read_sigma) + " (ln)").c_str() : "-");
    } else {
      std::snprintf(line, sizeof line, "%5d  %8.1f  %10.3f  %6.3f uS     %5.2f %%        %s\n",
                    f.level, f.icc_ua, f.median_us, f.c2c_sigma, 100.0 * f.d2d_sigma_rel(),
                    f.read_measured ? (std::to_string(f.read_sigma) + " uS").c_str() : "-");
    }
    o << line;
  }
  if (result.fit.read_noise.measured) {
    o << "read noise: sigma = " << result.fit.read_noise.relative << " G + "
      << result.fit.read_noise.absolute_us << " uS\n";
  }
  if (result.fit.c2c_line.valid) {
    o << "c2c line:   sigma = " << result.fit.c2c_line.intercept_us << " "
      << (result.fit.c2c_line.slope < 0 ? "- " : "+ ") << std::abs(result.fit.c2c_line.slope)
      << " G  (uS)\n";
  }
  return o.str();
}

}  // namespace metaplast::hil
