// BackgroundWork (background.hpp).
#include "python/src/background.hpp"

#include <chrono>
#include <cstdio>

namespace metaplast::python {

BackgroundWork::~BackgroundWork() {
  abort();
  py::gil_scoped_release release;
  if (thread_.joinable()) thread_.join();
}

void BackgroundWork::start(Work work) {
  if (started_) throw std::logic_error("BackgroundWork::start called twice");
  started_ = true;
  thread_ = std::thread([this, work = std::move(work)] {
    nlohmann::json result;
    std::exception_ptr error;
    try {
      result = work();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard lock(mutex_);
    result_ = std::move(result);
    error_ = error;
    done_ = true;
    changed_.notify_all();
  });
}

void BackgroundWork::report(nlohmann::json report) {
  std::lock_guard lock(mutex_);
  reports_.push_back(std::move(report));
  changed_.notify_all();
}

bool BackgroundWork::running() const {
  std::lock_guard lock(mutex_);
  return started_ && !done_;
}

void BackgroundWork::on_interrupt() {
  interrupted_ = true;
  const bool abort_now = first_ == FirstInterrupt::abort || stop_.load();
  if (abort_now) {
    abort();
    std::fprintf(stderr, "metaplast: interrupted: aborting after the step in flight\n");
  } else {
    stop();
    std::fprintf(stderr,
                 "metaplast: interrupted: stopping after this epoch's checkpoint (interrupt "
                 "again to abort after the step in flight)\n");
  }
}

py::object BackgroundWork::wait(const py::object& progress) {
  for (;;) {
    std::deque<nlohmann::json> reports;
    bool finished = false;
    {
      py::gil_scoped_release release;
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, std::chrono::milliseconds(100),
                        [this] { return done_ || !reports_.empty(); });
      reports.swap(reports_);
      finished = done_;
    }
    for (const auto& report : reports) {
      if (progress.is_none() || callback_error_) continue;
      try {
        progress(from_json(report));
      } catch (...) {
        callback_error_ = std::current_exception();
        stop();
      }
    }
    if (finished) break;
    if (PyErr_CheckSignals() != 0) {
      // Only KeyboardInterrupt is ours to turn into a stop; another exception a handler raised
      // is kept and raised at the end, as a callback's is.
      if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        PyErr_Clear();
        on_interrupt();
      } else {
        if (!callback_error_) callback_error_ = std::make_exception_ptr(py::error_already_set());
        stop();
      }
    }
  }
  {
    py::gil_scoped_release release;
    if (thread_.joinable()) thread_.join();
  }
  if (callback_error_) std::rethrow_exception(callback_error_);
  if (interrupted_) {
    // The interrupt's own outcome (a stopped run, an aborted one): the caller sees the
    // KeyboardInterrupt it caused; any other error of the work wins.
    if (error_ && !abort_) std::rethrow_exception(error_);
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw py::error_already_set();
  }
  if (error_) std::rethrow_exception(error_);
  return from_json(result_);
}

}  // namespace metaplast::python
