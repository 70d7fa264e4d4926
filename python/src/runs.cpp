// Runs from Python (docs/python.md, "Runs"): metaplast.Training (a `metaplast train` command
// line as keyword arguments, trained on a thread of its own: background.hpp; a KeyboardInterrupt
// stops it after the epoch's checkpoint, as the command line's first Ctrl-C), and the reader of a
// run's HDF5 snapshots behind metaplast.open_run.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "app/cli/commands.hpp"
#include "app/hil/pipeline.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/trainer.hpp"
#include "app/util/h5_reader.hpp"
#include "python/src/background.hpp"
#include "python/src/bindings.hpp"

namespace metaplast::python {

namespace {

nlohmann::json report_json(const learning::EpochReport& r) {
  nlohmann::json evaluations = nlohmann::json::array();
  for (const auto& e : r.evaluations) {
    evaluations.push_back(
        {{"task", e.task}, {"split", e.split}, {"accuracy", e.accuracy}, {"loss", e.loss}});
  }
  return {{"task", r.task},
          {"task_index", r.task_index},
          {"epoch", r.epoch},
          {"epochs", r.epochs},
          {"train_accuracy", r.train_accuracy},
          {"train_loss", r.train_loss},
          {"epoch_writes", r.epoch_writes},
          {"total_writes", r.total_writes},
          {"train_seconds", r.train_seconds},
          {"evaluations", evaluations}};
}

// A `metaplast train` command line's options resolved into the job, parse errors as InputError.
cli::TrainJob train_job(const py::kwargs& options) {
  const std::vector<std::string> arguments = command_arguments(options, "train()");
  try {
    return cli::parse_train_job(arguments);
  } catch (const CLI::ParseError& e) {
    throw std::invalid_argument(parse_error_message("train()", e));
  }
}

class Training {
 public:
  explicit Training(const py::kwargs& options)
      : job_(train_job(options)), work_(BackgroundWork::FirstInterrupt::stop) {
    control_.stop_after_epoch = &work_.stop_flag();
    control_.abort_now = &work_.abort_flag();
    control_.on_epoch_end = [this](const learning::EpochReport& r) {
      work_.report(report_json(r));
    };
    work_.start([this] {
      return job_.repeat > 1 ? hil::run_repetitions(job_.config, job_.out, job_.repeat, control_)
                             : hil::run_training(job_.config, job_.out, job_.resume, control_);
    });
  }

  py::object wait(const py::object& progress) { return work_.wait(progress); }
  void stop() { work_.stop(); }
  void abort() { work_.abort(); }
  bool running() const { return work_.running(); }
  std::string out_dir() const { return job_.out.string(); }

 private:
  cli::TrainJob job_;
  learning::RunControl control_;
  BackgroundWork work_;  // last: its thread uses the members above
};

// One HDF5 file of the product (an epoch snapshot, a measurement) as {path: float64 array} for
// `datasets`, present ones only, shaped as stored.
py::dict read_h5(const std::string& file, const std::vector<std::string>& datasets,
                 const std::vector<std::string>& string_attributes,
                 const std::vector<std::string>& number_attributes) {
  util::H5Reader reader(file);
  py::dict out;
  for (const auto& name : datasets) {
    if (!reader.has(name)) continue;
    std::vector<py::ssize_t> shape;
    for (std::size_t d : reader.dims(name)) shape.push_back(static_cast<py::ssize_t>(d));
    const std::vector<double> values = reader.doubles(name);
    py::array_t<double> array(shape);
    std::copy(values.begin(), values.end(), array.mutable_data());
    out[py::str(name)] = array;
  }
  py::dict attributes;
  for (const auto& name : string_attributes) {
    if (auto value = reader.string_attribute("/", name)) attributes[py::str(name)] = *value;
  }
  for (const auto& name : number_attributes) {
    if (auto value = reader.number_attribute("/", name)) attributes[py::str(name)] = *value;
  }
  out["attributes"] = attributes;
  return out;
}

constexpr const char* kTrainingDoc =
    R"doc(A training run on a thread of its own (docs/python.md, "Runs").

Training(**options) starts `metaplast train` with the command line's options as keyword
arguments (underscores for hyphens: train_limit=2000 for --train-limit 2000; lists for
comma lists: tasks=["mnist", "fashion"]; True for flags: yes=True), after the same checks.
The run writes its folder (out=DIR) as the command line does, so a stopped run continues with
Training(resume=DIR).

wait(progress=None) returns the summary (summary.json's content) and calls progress(report)
for every epoch, on the waiting thread. The GIL is released while the run trains.)doc";

}  // namespace

void bind_runs(py::module_& m) {
  py::class_<Training>(m, "Training", kTrainingDoc)
      .def(py::init<const py::kwargs&>())
      .def("wait", &Training::wait, py::arg("progress") = py::none(),
           "wait(progress=None) -> dict\n\nWait for the run's end and return its summary. "
           "progress(report) is called for every epoch: report has task, epoch, epochs, "
           "train_accuracy, train_loss, evaluations (task, split, accuracy, loss), "
           "epoch_writes, total_writes, train_seconds. A KeyboardInterrupt stops the run after "
           "the epoch's checkpoint and is raised again once it has stopped (a second one aborts "
           "after the step in flight); the folder stays resumable. If progress raises, the run "
           "stops after that epoch and wait raises the callback's exception.")
      .def("stop", &Training::stop,
           "Ask the run to stop after the current epoch's checkpoint (resumable).")
      .def("abort", &Training::abort,
           "Ask the run to stop after the training step in flight (the epoch is lost; the "
           "previous checkpoint is intact); wait() then raises RunAborted.")
      .def_property_readonly("running", &Training::running, "Whether the run is still going.")
      .def_property_readonly("out_dir", &Training::out_dir, "The run's folder.");
  m.def("_read_h5", &read_h5, py::arg("file"), py::arg("datasets"),
        py::arg("string_attributes") = std::vector<std::string>{},
        py::arg("number_attributes") = std::vector<std::string>{},
        "Datasets of one of the product's HDF5 files as float64 arrays (internal: "
        "metaplast.open_run uses it).");
}

}  // namespace metaplast::python
