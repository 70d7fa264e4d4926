#include "app/util/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace metaplast::util {

std::string format_duration(double seconds) {
  seconds = std::max(0.0, seconds);
  char buf[64];
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.0f s", seconds);
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%.0f min %02.0f s", std::floor(seconds / 60),
                  std::fmod(seconds, 60));
  } else {
    std::snprintf(buf, sizeof buf, "%.0f h %02.0f min", std::floor(seconds / 3600),
                  std::floor(std::fmod(seconds, 3600) / 60));
  }
  return buf;
}

double seconds_left(double elapsed_seconds, double fraction_done) {
  if (fraction_done <= 0) return 0.0;
  return elapsed_seconds * (1.0 - std::min(fraction_done, 1.0)) / fraction_done;
}

ProgressLine::ProgressLine() : enabled_(::isatty(STDERR_FILENO) != 0), start_(Clock::now()) {}

double ProgressLine::elapsed_seconds() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

void ProgressLine::show(const std::string& text, bool force) {
  if (!enabled_) return;
  const auto now = Clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
}

void ProgressLine::show_count(const std::string& label, std::size_t done, std::size_t total) {
  const double fraction =
      total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  char counts[96];
  std::snprintf(counts, sizeof counts, " %zu/%zu (%3.0f%%)  ETA ", done, total, 100.0 * fraction);
  const bool last = done >= total;
  show(label + counts + format_duration(seconds_left(elapsed_seconds(), fraction)), last);
  if (last && enabled_) {
    std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
}

void ProgressLine::clear() {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace metaplast::util
