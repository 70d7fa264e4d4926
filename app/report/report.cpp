#include "app/report/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "app/campaign/campaign.hpp"
#include "app/campaign/evaluate.hpp"
#include "app/campaign/run_record.hpp"
#include "app/live/html.hpp"
#include "app/util/csv.hpp"
#include "app/util/gnuplot.hpp"
#include "app/util/statistics.hpp"
#include "common/atomic_file.hpp"
#include "common/json_file.hpp"

namespace metaplast::report {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using campaign::MetricsRow;

using live::html_escape;

// File-name-safe form of a step id ("fig2a/mstar=0.5" -> "fig2a_mstar_0.5").
std::string slug(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return out;
}

// Gnuplot string literals: file names (inert) and shown text (enhanced-mode markup escaped).
std::string gq(const std::string& s) { return util::gnuplot_quote(s); }
std::string gtext(const std::string& s) { return util::gnuplot_quote_text(s); }

void write_text(const fs::path& file, const std::string& text) {
  common::write_file_atomically(file, text);
}

class Plotter {
 public:
  Plotter(fs::path dir, ReportPage& page) : dir_(std::move(dir)), page_(page) {}

  // Draws `body` (gnuplot commands after the terminal and output) into <name>.png.
  bool draw(const std::string& name, const std::string& body, const std::string& title,
            const std::string& caption, int width = 1000, int height = 600) {
    const std::string png = name + ".png";
    std::ostringstream gp;
    gp << "# Draw with `gnuplot " << name << ".gp` in this folder.\n"
       << "set terminal pngcairo size " << width << "," << height
       << " enhanced font 'DejaVu Sans,13' linewidth 1.5\n"
       << "set output " << gq(png) << "\n"
       << "set grid lc rgb '#dddddd'\n"
       << "set border lc rgb '#444444'\n"
       << body;
    write_text(dir_ / (name + ".gp"), gp.str());
    fs::remove(dir_ / png);
    std::string error = util::run_gnuplot(dir_ / (name + ".gp"));
    std::error_code ec;
    if (error.empty() && fs::file_size(dir_ / png, ec) == 0) {
      error = "gnuplot wrote no " + (dir_ / png).string() + " (disk full?)";
    }
    if (!error.empty()) {
      fs::remove(dir_ / png, ec);  // never a half-drawn picture
      page_.errors.push_back(title + ": " + error);
      return false;
    }
    page_.images.push_back(dir_ / png);
    page_.figures.push_back({png, title, caption});
    return true;
  }

  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  ReportPage& page_;
};

// A train run: its tasks in training order and its metrics.
struct TrainRun {
  std::string id;  // "" for a lone train run
  fs::path dir;
  json parameters = json::object();
  std::vector<std::string> tasks;
  int epochs = 0;
  std::vector<MetricsRow> rows;
  std::map<std::string, double> final;  // task_evaluated -> last test accuracy
};

TrainRun load_train_run(const fs::path& dir, const std::string& id, const json& parameters) {
  TrainRun run;
  run.id = id;
  run.dir = dir;
  run.parameters = parameters;
  if (fs::exists(dir / "config.json")) {
    const json config = campaign::read_json(dir / "config.json");
    const json& options = config.contains("options") ? config["options"] : config;
    if (options.contains("tasks")) run.tasks = options["tasks"].get<std::vector<std::string>>();
    if (options.contains("epochs")) run.epochs = options["epochs"].get<int>();
  }
  if (fs::exists(dir / "metrics.csv")) run.rows = campaign::read_metrics_csv(dir / "metrics.csv");
  for (const auto& r : run.rows) {
    if (std::find(run.tasks.begin(), run.tasks.end(), r.task_trained) == run.tasks.end()) {
      run.tasks.push_back(r.task_trained);
    }
    run.epochs = std::max(run.epochs, r.epoch);
    if (r.split == "test") run.final[r.task_evaluated] = r.accuracy;
  }
  return run;
}

// Fig. 2 style: test accuracy of every task after every epoch, task boundaries marked.
void plot_accuracy(Plotter& plot, const TrainRun& run, ReportPage& page) {
  const std::string name = "accuracy" + (run.id.empty() ? "" : "-" + slug(run.id));
  const std::string label = run.id.empty() ? run.dir.filename().string() : run.id;
  if (run.rows.empty()) {
    page.missing.push_back("accuracy of " + label + ": no epoch finished yet (metrics.csv empty)");
    return;
  }
  std::vector<std::string> evaluated;
  for (const auto& r : run.rows) {
    if (r.split == "test" &&
        std::find(evaluated.begin(), evaluated.end(), r.task_evaluated) == evaluated.end()) {
      evaluated.push_back(r.task_evaluated);
    }
  }
  std::ostringstream dat;
  for (const auto& task : evaluated) {
    dat << "# " << task << "\n";
    for (const auto& r : run.rows) {
      if (r.split != "test" || r.task_evaluated != task) continue;
      const auto ti =
          std::find(run.tasks.begin(), run.tasks.end(), r.task_trained) - run.tasks.begin();
      dat << ti * run.epochs + r.epoch << ' ' << 100 * r.accuracy << "\n";
    }
    dat << "\n\n";
  }
  write_text(plot.dir() / (name + ".dat"), dat.str());
  const int total = static_cast<int>(run.tasks.size()) * run.epochs;
  std::ostringstream g;
  g << "set title " << gtext("Test accuracy per task: " + label) << "\n"
    << "set xlabel 'epoch (all tasks)'\nset ylabel 'test accuracy (%)'\n"
    << "set xrange [0.5:" << total + 0.5 << "]\nset yrange [0:105]\n"
    << "set key outside right center box\n";
  if (total <= 20) g << "set xtics 1\n";
  for (std::size_t t = 0; t < run.tasks.size(); ++t) {
    const double start = static_cast<double>(t) * run.epochs + 0.5;
    if (t > 0) {
      g << "set arrow from " << start << ",0 to " << start
        << ",105 nohead dt 2 lw 1.5 lc rgb '#888888'\n";
    }
    g << "set label " << gtext("training " + run.tasks[t]) << " at " << start + 0.1
      << ",101 left font ',11' tc rgb '#555555'\n";
  }
  g << "plot ";
  for (std::size_t i = 0; i < evaluated.size(); ++i) {
    g << (i ? ", " : "") << gq(name + ".dat") << " index " << i
      << " using 1:2 with linespoints pt 7 ps 1.2 lw 2 title " << gtext(evaluated[i] + " (test)");
  }
  g << "\n";
  std::string caption =
      "Test accuracy of each task after every epoch; dashed lines mark where "
      "training moves to the next task.";
  if (!run.parameters.empty()) caption += " Parameters: " + run.parameters.dump() + ".";
  plot.draw(name, g.str(), "Accuracy across epochs: " + label, caption);
}

// Final accuracy of each task against m* (mean and standard deviation over seeds).
void plot_mstar_sweep(Plotter& plot, const std::vector<TrainRun>& runs, ReportPage& page) {
  std::map<double, std::map<std::string, std::vector<double>>> by_mstar;
  std::vector<std::string> tasks;
  for (const auto& r : runs) {
    if (!r.parameters.contains("mstar") || r.final.empty()) continue;
    for (const auto& [task, acc] : r.final) {
      by_mstar[r.parameters["mstar"].get<double>()][task].push_back(100 * acc);
      if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) tasks.push_back(task);
    }
  }
  if (by_mstar.size() < 2) {
    page.missing.push_back(
        "m* sweep: no sweep over \"mstar\" with at least two finished values in this run");
    return;
  }
  std::ostringstream dat;
  dat << "# mstar";
  for (const auto& t : tasks) dat << " " << t << "_mean " << t << "_std";
  dat << "\n";
  for (const auto& [m, per_task] : by_mstar) {
    dat << m;
    for (const auto& t : tasks) {
      const auto it = per_task.find(t);
      if (it == per_task.end()) {
        dat << " NaN NaN";
        continue;
      }
      const util::Summary s = util::summarize(it->second);
      dat << " " << s.mean << " " << s.std;
    }
    dat << "\n";
  }
  write_text(plot.dir() / "mstar_sweep.dat", dat.str());
  std::ostringstream g;
  g << "set title 'Final test accuracy of each task against m*'\n"
    << "set xlabel 'm*'\nset ylabel 'final test accuracy (%)'\nset yrange [0:105]\n"
    << "set key outside right center box\nset offsets 0.2,0.2,0,0\nplot ";
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    g << (i ? ", " : "") << "'mstar_sweep.dat' using 1:" << 2 + 2 * i << ":" << 3 + 2 * i
      << " with yerrorlines pt 7 ps 1.2 lw 2 title " << gtext(tasks[i]);
  }
  g << "\n";
  plot.draw("mstar_sweep", g.str(), "m* sweep",
            "Test accuracy of each task at the end of training, against the metaplasticity "
            "parameter m* (error bars: standard deviation over seeds, when repeated).");
}

// Level CDFs of a characterisation (cdf.csv: level,icc_ua,conductance_us,cumulative_fraction).
void plot_cdf(Plotter& plot, const fs::path& cdf_csv, const std::string& id) {
  std::ifstream in(cdf_csv);
  std::string line;
  std::getline(in, line);
  std::map<int, std::vector<std::pair<double, double>>> levels;
  std::map<int, double> icc;
  while (std::getline(in, line)) {
    int level = 0;
    double icc_ua = 0, g = 0, f = 0;
    if (std::sscanf(line.c_str(), "%d,%lf,%lf,%lf", &level, &icc_ua, &g, &f) != 4) continue;
    if (g <= 0) continue;  // log axis
    levels[level].push_back({g, f});
    icc[level] = icc_ua;
  }
  const std::string name = "cdf-" + slug(id);
  std::ostringstream dat;
  double lo = 1e300, hi = 0;
  for (const auto& [level, points] : levels) {
    // At most ~1000 points per level: the curve looks the same, gnuplot stays quick.
    const std::size_t stride = std::max<std::size_t>(1, points.size() / 1000);
    dat << "# level " << level << "\n";
    for (std::size_t i = 0; i < points.size(); i += stride) {
      dat << points[i].first << ' ' << points[i].second << "\n";
      lo = std::min(lo, points[i].first);
      hi = std::max(hi, points[i].first);
    }
    dat << "\n\n";
  }
  write_text(plot.dir() / (name + ".dat"), dat.str());
  if (levels.empty()) return;
  std::ostringstream g;
  g << "set title " << gtext("Conductance CDF per level: " + id) << "\n"
    << "set xlabel 'conductance (µS)'\nset ylabel 'cumulative fraction'\n"
    << "set logscale x\nset format x '%g'\nset xrange [" << lo / 1.3 << ":" << hi * 1.3
    << "]\nset yrange [0:1]\n"
    << "set key outside right top box title 'level (I_{CC})'\nplot ";
  std::size_t i = 0;
  for (const auto& [level, points] : levels) {
    char title[64];
    if (level == 0) {
      std::snprintf(title, sizeof title, "LCS");
    } else {
      std::snprintf(title, sizeof title, "%d (%.0f µA)", level, icc[level]);
    }
    static const char* colours[] = {"#000000", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                    "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
    g << (i ? ", " : "") << gq(name + ".dat") << " index " << i
      << " using 1:2 with lines lw 2 lc rgb '" << colours[i % 10] << "' title " << gq(title);
    ++i;
  }
  g << "\n";
  plot.draw(name, g.str(), "Level CDFs: " + id,
            "Cumulative distribution of the conductance read after programming, per level "
            "(Fig. 4b style); from " +
                cdf_csv.filename().string() + ".",
            1100, 620);
}

// "mstar=3: " for group `group` of the evaluation.json next to per_epoch.csv ("" for none).
std::string group_label(const fs::path& per_epoch_csv, int group) {
  const fs::path file = per_epoch_csv.parent_path() / "evaluation.json";
  if (!fs::exists(file)) return "";
  const json e = campaign::read_json(file);
  if (!e.contains("groups") || group >= static_cast<int>(e["groups"].size())) return "";
  const json& g = e["groups"][group];
  // Evaluations written before groups had names: their parameters.
  std::string text = g.contains("name") ? g["name"].get<std::string>()
                                        : campaign::parameters_label(g.value("parameters", json()));
  return text.empty() ? "" : text + ": ";
}

// Mean and standard deviation across repeats, per task and epoch (evaluate's per_epoch.csv).
void plot_repeats(Plotter& plot, const fs::path& per_epoch_csv, const std::string& id) {
  std::ifstream in(per_epoch_csv);
  std::string line;
  std::getline(in, line);
  struct Point {
    int x;
    double mean, sd;
  };
  std::map<std::string, std::vector<Point>> series;  // sort key -> points
  std::map<std::string, std::string> labels;         // sort key -> legend
  std::map<std::string, int> task_index;
  std::size_t max_runs = 0;
  std::map<int, int> epochs_of_group;
  std::vector<std::tuple<int, std::string, int, std::string, double, double, std::size_t>> rows;
  while (std::getline(in, line)) {
    const auto fields = util::try_csv_split(line);
    if (!fields || fields->size() < 7) continue;
    const auto& f = *fields;
    const std::string &group = f[0], &trained = f[1], &epoch = f[2], &evaluated = f[3],
                      &mean = f[4], &sd = f[5], &runs = f[6];
    rows.emplace_back(std::stoi(group), trained, std::stoi(epoch), evaluated, std::stod(mean),
                      std::stod(sd), std::stoul(runs));
    if (!task_index.count(trained)) {
      const int next = static_cast<int>(task_index.size());
      task_index[trained] = next;
    }
    epochs_of_group[std::stoi(group)] =
        std::max(epochs_of_group[std::stoi(group)], std::stoi(epoch));
    max_runs = std::max<std::size_t>(max_runs, std::stoul(runs));
  }
  if (max_runs < 2) return;
  for (const auto& [group, trained, epoch, evaluated, mean, sd, runs] : rows) {
    if (runs < 2 || group > 3) continue;
    const int x = task_index[trained] * epochs_of_group[group] + epoch;
    const int order = task_index.count(evaluated) ? task_index[evaluated] : 99;
    char key[32];
    std::snprintf(key, sizeof key, "%04d-%02d-", group, order);
    series[key + evaluated].push_back({x, 100 * mean, 100 * sd});
    labels[key + evaluated] = group_label(per_epoch_csv, group) + evaluated;
  }
  const std::string name = "repeats-" + slug(id);
  std::ostringstream dat;
  for (const auto& [label, points] : series) {
    dat << "# " << label << "\n";
    for (const auto& p : points) dat << p.x << ' ' << p.mean << ' ' << p.sd << "\n";
    dat << "\n\n";
  }
  write_text(plot.dir() / (name + ".dat"), dat.str());
  std::ostringstream g;
  g << "set title " << gtext("Mean test accuracy over repeats: " + id) << "\n"
    << "set xlabel 'epoch (all tasks)'\nset ylabel 'test accuracy (%), mean ± std'\n"
    << "set yrange [0:105]\nset key outside right center box\nset offsets 0.3,0.3,0,0\n"
    << "set xtics 1\nplot ";
  std::size_t i = 0;
  for (const auto& [label, points] : series) {
    g << (i ? ", " : "") << gq(name + ".dat") << " index " << i
      << " using 1:2:3 with yerrorlines pt 7 lw 2 title " << gtext(labels[label]);
    ++i;
  }
  g << "\n";
  plot.draw(name, g.str(), "Repeats: " + id,
            "Mean and standard deviation over " + std::to_string(max_runs) +
                " runs of the test accuracy of each task (Fig. 5a style).");
}

// Programming counts per device (the trainer's endurance.csv: source,bin_from,bin_to,devices,
// percent, one histogram per kind of device; runs made before the split have no source column
// and one histogram). One figure per kind: board pulses, virtual pulses and ideal level changes
// are different things (docs/run-records.md "Endurance report").
bool plot_writes(Plotter& plot, const TrainRun& run) {
  const fs::path file = run.dir / "endurance.csv";
  if (!fs::exists(file)) return false;
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  const bool has_source = line.rfind("source,", 0) == 0;
  struct Histogram {
    std::ostringstream dat;
    double width = 1, max_to = 0, devices = 0;
    std::size_t bins = 0;
  };
  std::map<std::string, Histogram> by_source;
  std::vector<std::string> order;
  while (std::getline(in, line)) {
    std::string source = "devices";
    std::string numbers = line;
    if (has_source) {
      const auto fields = util::try_csv_split(line);
      if (!fields || fields->size() != 5) continue;
      const auto& f = *fields;
      source = f[0];
      numbers = f[1] + "," + f[2] + "," + f[3] + "," + f[4];
    }
    double from = 0, to = 0, n = 0, percent = 0;
    if (std::sscanf(numbers.c_str(), "%lf,%lf,%lf,%lf", &from, &to, &n, &percent) != 4) continue;
    if (!by_source.count(source)) order.push_back(source);
    Histogram& h = by_source[source];
    h.width = std::max(1.0, to - from + 1);  // inclusive integer bins
    h.max_to = std::max(h.max_to, to + 0.5);
    h.devices += n;
    if (percent > 0) h.dat << (from + to) / 2 << ' ' << percent << "\n";  // bin centre
    ++h.bins;
  }
  const std::string label = run.id.empty() ? std::string("run") : run.id;
  bool drawn = false;
  for (const auto& source : order) {
    Histogram& h = by_source[source];
    if (h.bins == 0) continue;
    const std::string name = "endurance-" + slug(label) + (has_source ? "-" + source : "");
    write_text(plot.dir() / (name + ".dat"), h.dat.str());
    const bool pulses = source != "ideal";
    const std::string what = source == "board"     ? "SET + RESET pulses per board cell"
                             : source == "virtual" ? "simulated pulses per virtual device"
                             : source == "ideal"   ? "level changes per ideal weight (no device)"
                                                   : "programming operations per device";
    std::ostringstream g;
    g << "set title " << gtext(what + ": " + label) << "\n"
      << "set xlabel " << gtext(what + (pulses ? " (verify retries included)" : "")) << "\n"
      << "set ylabel 'devices (%)'\nset style fill solid 0.7 border -1\nset boxwidth "
      << h.width * 0.9 << "\nset xrange [-0.5:" << h.max_to
      << "]\nset logscale y\nset format y '10^{%L}'\nset yrange [*:100]\n"
      << "plot " << gq(name + ".dat") << " using 1:2 with boxes lc rgb '#3366aa' notitle\n";
    char caption[240];
    std::snprintf(caption, sizeof caption,
                  "Percentage of the %.0f %s per count of %s over the whole run (Fig. 5b style, "
                  "from endurance.csv).",
                  h.devices,
                  source == "board"     ? "board cells"
                  : source == "virtual" ? "virtual devices"
                  : source == "ideal"   ? "ideal weights"
                                        : "devices",
                  pulses ? "programming pulses" : "level changes");
    drawn = plot.draw(name, g.str(), "Programming-count distribution (" + source + "): " + label,
                      caption) ||
            drawn;
  }
  return drawn;
}

// The array's conductance map (conductances.csv: row,col,conductance_us).
bool plot_conductance_map(Plotter& plot, const TrainRun& run) {
  const fs::path file = run.dir / "conductances.csv";
  if (!fs::exists(file)) return false;
  const std::string name = "conductance-" + slug(run.id.empty() ? "run" : run.id);
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  // `with image` needs the full regular grid: every cell of the array, NaN (not drawn) where no
  // weight is placed. Listing only the placed cells skewed the picture whenever a bad cell was
  // skipped.
  constexpr unsigned kArraySide = 128;
  std::vector<std::vector<double>> grid(kArraySide, std::vector<double>(kArraySide, std::nan("")));
  std::size_t n = 0;
  while (std::getline(in, line)) {
    unsigned row = 0, col = 0;
    double g = 0;
    if (std::sscanf(line.c_str(), "%u,%u,%lf", &row, &col, &g) == 3) {
      if (row >= grid.size())
        grid.resize(row + 1, std::vector<double>(grid[0].size(), std::nan("")));
      if (col >= grid[row].size()) {
        for (auto& r : grid) r.resize(col + 1, std::nan(""));
      }
      grid[row][col] = g;
      ++n;
    }
  }
  if (n == 0) return false;
  std::ostringstream dat;
  for (std::size_t row = 0; row < grid.size(); ++row) {
    for (std::size_t col = 0; col < grid[row].size(); ++col) {
      dat << col << ' ' << row << ' ';
      if (std::isnan(grid[row][col])) {
        dat << "NaN\n";
      } else {
        dat << grid[row][col] << "\n";
      }
    }
    dat << "\n";
  }
  write_text(plot.dir() / (name + ".dat"), dat.str());
  std::ostringstream g;
  g << "set title "
    << gtext(run.id.empty() ? "Array conductance map" : "Array conductance map: " + run.id) << "\n"
    << "set xlabel 'column'\nset ylabel 'row'\nset size ratio -1\n"
    << "set xrange [-0.5:" << grid[0].size() - 0.5 << "]\nset yrange [" << grid.size() - 0.5
    << ":-0.5]\n"
    << "set cblabel 'conductance (µS)'\nset palette rgb 33,13,10\n"
    << "plot " << gq(name + ".dat") << " using 1:2:3 with image notitle\n";
  return plot.draw(name, g.str(), "Conductance map: " + run.id,
                   "Conductance of every cell read at the end of the run (from "
                   "conductances.csv).",
                   800, 720);
}

std::string accuracy_table(const std::vector<TrainRun>& runs) {
  std::vector<std::string> tasks;
  for (const auto& r : runs) {
    for (const auto& [t, a] : r.final) {
      if (std::find(tasks.begin(), tasks.end(), t) == tasks.end()) tasks.push_back(t);
    }
  }
  std::ostringstream h;
  h << "<table><tr><th>run</th><th>parameters</th>";
  for (const auto& t : tasks) h << "<th>" << html_escape(t) << " (%)</th>";
  h << "</tr>\n";
  for (const auto& r : runs) {
    h << "<tr><td>" << html_escape(r.id.empty() ? r.dir.filename().string() : r.id) << "</td><td>"
      << html_escape(r.parameters.empty() ? "" : r.parameters.dump()) << "</td>";
    for (const auto& t : tasks) {
      const auto it = r.final.find(t);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", it == r.final.end() ? NAN : 100 * it->second);
      h << "<td class=num>" << (it == r.final.end() ? "&ndash;" : buf) << "</td>";
    }
    h << "</tr>\n";
  }
  h << "</table>\n";
  return h.str();
}

// The per-level summary of a characterisation (calibration.json "characterization" "levels").
std::string characterization_table(const fs::path& calibration_json) {
  if (!fs::exists(calibration_json)) return "";
  const json doc = campaign::read_json(calibration_json);
  if (!doc.contains("characterization") || !doc["characterization"].contains("levels")) return "";
  const json& c = doc["characterization"];
  std::ostringstream h;
  h << "<h2>Levels</h2>\n<p>" << c.value("cells", 0) << " cells x " << c.value("cycles", 0)
    << " cycles</p>\n<table><tr><th>level</th><th>I<sub>CC</sub> (&micro;A)</th><th>cells</th>"
       "<th>median (&micro;S)</th><th>c2c &sigma;</th><th>d2d &sigma;</th><th>units</th></tr>\n";
  for (const auto& l : c["levels"]) {
    char row[320];
    std::snprintf(row, sizeof row,
                  "<tr><td class=num>%d</td><td class=num>%.0f</td><td class=num>%zu</td>"
                  "<td class=num>%.3f</td><td class=num>%.4g</td><td class=num>%.4g</td><td>%s"
                  "</td></tr>\n",
                  l.value("level", 0), l.value("icc_ua", 0.0), l.value("cells", std::size_t{0}),
                  l.value("median_us", 0.0), l.value("c2c_sigma", 0.0), l.value("d2d_sigma", 0.0),
                  l.value("units", std::string("uS")) == "ln" ? "ln" : "&micro;S");
    h << row;
  }
  h << "</table>\n";
  return h.str();
}

// The plots a bench measurement drew (measurement.json: result.files), copied next to the page as
// <id>-<name>.png: the measurements plot their own data (units, log axes, per-level colours:
// docs/bench.md), the report shows them with the others.
void add_measurement_figures(const fs::path& measurement_dir, const std::string& id,
                             const fs::path& out, ReportPage& page) {
  const json record = campaign::read_json(measurement_dir / "measurement.json");
  const std::string kind = record.value("kind", std::string("measurement"));
  const std::string status = record.value("status", std::string("?"));
  const json files = record.value("result", json::object()).value("files", json::array());
  for (const auto& f : files) {
    const std::string name = f.is_string() ? f.get<std::string>() : "";
    if (name.size() < 5 || name.substr(name.size() - 4) != ".png") continue;
    if (name.find('/') != std::string::npos || !fs::exists(measurement_dir / name)) continue;
    std::ifstream in(measurement_dir / name, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string copy = id + "-" + name;
    common::write_file_atomically(out / copy, bytes);
    page.images.push_back(out / copy);
    page.figures.push_back({copy, id + ": " + kind + " (" + name + ")",
                            "Drawn by the " + kind + " measurement (status " + status +
                                "); data "
                                "and redraw script in " +
                                measurement_dir.string() + "."});
  }
}

}  // namespace

ReportPage write_report(const fs::path& dir) {
  const bool is_campaign = fs::exists(dir / campaign::kPlanFile);
  const bool is_train = fs::exists(dir / "metrics.csv") || fs::exists(dir / "config.json");
  const bool is_characterization = fs::exists(dir / "cdf.csv");
  const bool is_measurement = fs::exists(dir / "measurement.json");
  if (!is_campaign && !is_train && !is_characterization && !is_measurement) {
    throw std::invalid_argument(dir.string() +
                                " is neither a train run directory (metrics.csv), a campaign "
                                "run directory (plan.json), a characterize --out directory "
                                "(cdf.csv) nor a measurement folder (measurement.json): give "
                                "one of those");
  }
  if (!util::gnuplot_installed()) {
    throw std::runtime_error(
        "gnuplot is not installed: the report draws its plots with it (Debian: apt-get install "
        "gnuplot-nox, or run scripts/setup.sh)");
  }
  ReportPage page;
  const fs::path out = dir / "report";
  fs::create_directories(out);
  page.index = out / "index.html";
  Plotter plot(out, page);

  std::vector<TrainRun> runs;
  std::vector<std::pair<std::string, fs::path>> cdfs, evaluations, measurements;
  const std::string name = fs::absolute(dir).lexically_normal().filename().string();
  page.title = "metaplast run " + name;
  if (is_campaign) {
    const json plan = campaign::read_json(dir / campaign::kPlanFile);
    page.title = "Campaign " + plan.value("campaign", std::string("?"));
    for (const auto& s : plan["steps"]) {
      const fs::path step_dir = dir / s["dir"].get<std::string>();
      const std::string type = s["type"];
      if (type == "train" && fs::exists(step_dir / "metrics.csv")) {
        runs.push_back(load_train_run(step_dir, s["id"], s["parameters"]));
      } else if (type == "characterize" && fs::exists(step_dir / "cdf.csv")) {
        cdfs.emplace_back(s["id"], step_dir / "cdf.csv");
      } else if (type == "evaluate" && fs::exists(step_dir / "per_epoch.csv")) {
        evaluations.emplace_back(s["id"], step_dir / "per_epoch.csv");
      } else if (campaign::is_measurement_step(type) && fs::exists(step_dir / "measurement.json")) {
        measurements.emplace_back(s["id"], step_dir);
      }
    }
  } else if (is_train) {
    runs.push_back(load_train_run(dir, "", json::object()));
    if (fs::exists(dir / "cdf.csv")) cdfs.emplace_back("run", dir / "cdf.csv");
  } else if (is_measurement) {
    page.title = "Measurement " + name;
    measurements.emplace_back(name, dir);
  } else {
    page.title = "Characterisation " + name;
    cdfs.emplace_back(name, dir / "cdf.csv");
    page.tables_html = characterization_table(dir / "calibration.json");
  }

  if (is_campaign || is_train) {
    if (runs.empty()) page.missing.push_back("accuracy: no train step has finished an epoch yet");
    for (const auto& r : runs) plot_accuracy(plot, r, page);
    if (is_campaign) plot_mstar_sweep(plot, runs, page);
    for (const auto& [id, file] : evaluations) plot_repeats(plot, file, id);
  }
  for (const auto& [id, step_dir] : measurements) add_measurement_figures(step_dir, id, out, page);
  if (cdfs.empty() && !is_measurement) {
    page.missing.push_back(
        "level CDFs: no characterisation in this run (a characterize step "
        "writes cdf.csv)");
  }
  for (const auto& [id, file] : cdfs) plot_cdf(plot, file, id);
  if (is_campaign || is_train) {
    bool any_writes = false, any_map = false;
    for (const auto& r : runs) {
      any_writes = plot_writes(plot, r) || any_writes;
      any_map = plot_conductance_map(plot, r) || any_map;
    }
    if (!any_writes) {
      page.missing.push_back(
          "programming-count distribution: no train run wrote endurance.csv "
          "(only runs with weights on a board or on virtual devices count "
          "writes)");
    }
    if (!any_map) {
      page.missing.push_back(
          "conductance map: no train run wrote conductances.csv (only runs "
          "with weights on a board have one)");
    }
    if (!runs.empty()) page.tables_html = "<h2>Final test accuracy</h2>\n" + accuracy_table(runs);
  }
  write_report_index(dir, page);
  return page;
}

void write_report_index(const fs::path& dir, const ReportPage& page) {
  json record;
  if (fs::exists(dir / campaign::kRecordFile)) {
    record = campaign::read_json(dir / campaign::kRecordFile);
  }
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << html_escape(page.title)
       << "</title>\n<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;"
          "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
          "padding:3px 8px;text-align:left}td.num{text-align:right}figure{margin:2em 0}"
          "img{max-width:100%;border:1px solid #eee}figcaption{color:#555}.missing{color:#884}"
          "</style></head><body>\n<h1>"
       << html_escape(page.title) << "</h1>\n<p>Directory: <code>"
       << html_escape(fs::absolute(dir).lexically_normal().string()) << "</code></p>\n";
  if (!record.is_null()) {
    html << "<table>";
    for (const char* key : {"status", "started", "finished", "metaplast_version", "git_commit",
                            "station", "chip", "host"}) {
      if (!record.contains(key) || record[key].is_null()) continue;
      const auto& v = record[key];
      html << "<tr><th>" << key << "</th><td>" << html_escape(common::option_value_text(v))
           << "</td></tr>";
    }
    html << "<tr><th>seeds</th><td>" << html_escape(record.value("seeds", json::array()).dump())
         << "</td></tr></table>\n";
  }
  html << page.tables_html;
  html << "<h2>Plots</h2>\n";
  for (const auto& f : page.figures) {
    html << "<figure><h3>" << html_escape(f.title) << "</h3><img src=\"" << html_escape(f.png)
         << "\" alt=\"" << html_escape(f.title) << "\"><figcaption>" << html_escape(f.caption)
         << "</figcaption></figure>\n";
  }
  if (!page.missing.empty()) {
    html << "<h2>Not plotted</h2>\n<ul class=missing>\n";
    for (const auto& m : page.missing) html << "<li>" << html_escape(m) << "</li>\n";
    html << "</ul>\n";
  }
  if (!page.errors.empty()) {
    html << "<h2>Plot errors</h2>\n<ul>\n";
    for (const auto& e : page.errors) html << "<li><pre>" << html_escape(e) << "</pre></li>\n";
    html << "</ul>\n";
  }
  html << "</body></html>\n";
  write_text(page.index, html.str());
}

}  // namespace metaplast::report
