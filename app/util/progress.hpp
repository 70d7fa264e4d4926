// Progress of long work on a terminal: one line on stderr, rewritten in place, with the time left
// at the pace so far. Silent when stderr is not a terminal, so logs and CI keep one line per step.
// Used by every long command (train, characterize, board read/program/form, campaign steps).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace metaplast::util {

// "42 s", "3 min 10 s", "2 h 05 min" (a negative duration as 0 s).
std::string format_duration(double seconds);

// The time the rest of a job takes at the pace so far: elapsed * (1 - done) / done, where done is
// the fraction finished (0..1); 0 while nothing is done.
double seconds_left(double elapsed_seconds, double fraction_done);

class ProgressLine {
 public:
  // Shown when stderr is a terminal.
  ProgressLine();
  bool enabled() const { return enabled_; }
  // Since construction.
  double elapsed_seconds() const;
  // Rewrites the line with `text`; at most 4 times a second unless `force`.
  void show(const std::string& text, bool force = false);
  // "<label> <done>/<total> (pp%)  ETA <left>" from this line's pace; the last count (done ==
  // total) is always shown and ends the line.
  void show_count(const std::string& label, std::size_t done, std::size_t total);
  // Erases the line (before a log line, or when the work is done).
  void clear();

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_ = false;
  Clock::time_point start_, last_{};
};

}  // namespace metaplast::util
