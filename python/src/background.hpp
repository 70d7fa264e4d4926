// Long work (a training, a characterisation, a campaign) on a thread of its own while the calling
// Python thread waits (docs/python.md, "Runs"). The one mechanism every long call of the module
// uses:
//   - the work's thread never takes the GIL: it hands progress reports (JSON) to a queue;
//   - the waiting thread holds the GIL only between waits of 100 ms, to call the progress
//     callback with the queued reports and to let Python's signal handlers run;
//   - a KeyboardInterrupt asks the work to stop at its next safe point (FirstInterrupt::stop: a
//     training's epoch checkpoint) or to abort (FirstInterrupt::abort, or a second interrupt),
//     and is raised again once the work has ended, so the caller sees it;
//   - a progress callback that raises asks the work to stop; its exception is raised at the end;
//   - the work's own exception is raised by wait() (translated as every C++ error is).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "python/src/bindings.hpp"

namespace metaplast::python {

class BackgroundWork {
 public:
  enum class FirstInterrupt { stop, abort };
  // Returns the result wait() hands back (as Python values). Runs on the work's thread.
  using Work = std::function<nlohmann::json()>;

  explicit BackgroundWork(FirstInterrupt first) : first_(first) {}
  // Aborts the work if it is still running, and waits for it (GIL released).
  ~BackgroundWork();
  BackgroundWork(const BackgroundWork&) = delete;
  BackgroundWork& operator=(const BackgroundWork&) = delete;

  // Starts `work` on its thread. Once only.
  void start(Work work);
  // Waits for the end (see the file comment); returns the work's result.
  py::object wait(const py::object& progress);

  // From the work's thread: queue a report for the progress callback. Never blocks on Python.
  void report(nlohmann::json report);
  // The flags the work polls (RunControl, campaign Interrupts, a measurement's progress hook).
  const std::atomic<bool>& stop_flag() const { return stop_; }
  const std::atomic<bool>& abort_flag() const { return abort_; }

  void stop() { stop_ = true; }
  void abort() {
    stop_ = true;
    abort_ = true;
  }
  bool running() const;

 private:
  void on_interrupt();

  FirstInterrupt first_;
  std::atomic<bool> stop_{false}, abort_{false};
  bool interrupted_ = false;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<nlohmann::json> reports_;
  bool started_ = false, done_ = false;
  nlohmann::json result_;
  std::exception_ptr error_, callback_error_;
  std::thread thread_;
};

}  // namespace metaplast::python
