#include "app/live/live_updates.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace metaplast::live {

nlohmann::json progress_body(double fraction, const std::string& what, double session_done,
                             std::chrono::steady_clock::duration session_elapsed) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  nlohmann::json body = {{"fraction", fraction}, {"what", what}};
  const double elapsed = std::chrono::duration<double>(session_elapsed).count();
  if (session_done > 0.02 && elapsed > 0.5) {
    body["eta_s"] = elapsed / session_done * (1.0 - fraction);
  }
  return body;
}

nlohmann::json Pace::progress(double fraction, const std::string& what) {
  const auto now = std::chrono::steady_clock::now();
  if (!start_) start_.emplace(fraction, now);
  return progress_body(fraction, what, fraction - start_->first, now - start_->second);
}

namespace {

// 4 significant digits: the page draws them, and the update stays small.
double rounded(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", v);
  return std::strtod(text, nullptr);
}

bool drawable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

}  // namespace

nlohmann::json plot_body(const Plot& plot, std::size_t max_points) {
  nlohmann::json series = nlohmann::json::array();
  for (const auto& s : plot.series) {
    std::vector<double> x, y;
    const std::size_t n = std::min(s.x.size(), s.y.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (drawable(s.x[i], plot.log_x) && drawable(s.y[i], plot.log_y)) {
        x.push_back(rounded(s.x[i]));
        y.push_back(rounded(s.y[i]));
      }
    }
    if (x.size() > max_points && max_points >= 2) {
      std::vector<double> tx, ty;
      for (std::size_t k = 0; k < max_points; ++k) {
        const std::size_t i = k * (x.size() - 1) / (max_points - 1);
        tx.push_back(x[i]);
        ty.push_back(y[i]);
      }
      x.swap(tx);
      y.swap(ty);
    }
    series.push_back({{"label", s.label}, {"x", x}, {"y", y}, {"group", s.group}, {"fit", s.fit}});
  }
  return {{"title", plot.title}, {"x_label", plot.x_label}, {"y_label", plot.y_label},
          {"x_log", plot.log_x}, {"y_log", plot.log_y},     {"series", series}};
}

}  // namespace metaplast::live
