// The bodies of the updates every command's live view shares (docs/live.md, "Updates"), built in
// one place: a training, a characterisation and a bench measurement publish their progress and
// their plots through these.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace metaplast::live {

// "progress": `fraction` (0..1) of the command's work, `what` is in progress, and `eta_s` once
// the pace is known (more than 2 % done in this session and half a second gone). `session_done`
// is the fraction this session did (a resumed run started at more than 0).
nlohmann::json progress_body(double fraction, const std::string& what, double session_done,
                             std::chrono::steady_clock::duration session_elapsed);

// A command's progress with the ETA from this session's pace: the first progress() marks where
// (the fraction done then: more than 0 for a resumed run) and when the session started.
class Pace {
 public:
  nlohmann::json progress(double fraction, const std::string& what);

 private:
  std::optional<std::pair<double, std::chrono::steady_clock::time_point>> start_;
};

// One curve of a measurement's plot: points (x ascending or not; NaN and non-finite points are
// left out), drawn in the colour of `group` (curves of the same group share a colour: a level and
// its fitted model), dashed when `fit`.
struct PlotSeries {
  std::string label;
  std::vector<double> x, y;
  int group = 0;
  bool fit = false;
};

// A measurement's plot as the page draws it: axis labels with their units, log axes where the
// quantity spans decades.
struct Plot {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<PlotSeries> series;
};

// "plot": {"title", "x_label", "y_label", "x_log", "y_log", "series": [{"label", "x", "y",
// "group", "fit"}]}; each series at most `max_points` points (evenly thinned), values with 4
// significant digits. Points that cannot be drawn (non-finite, or <= 0 on a log axis) are left out.
nlohmann::json plot_body(const Plot& plot, std::size_t max_points = 400);

}  // namespace metaplast::live
