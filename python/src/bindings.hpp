// The Python module metaplast._metaplast (docs/python.md): the bindings of the product's own C++
// code, one file per part. The package metaplast (python/metaplast/__init__.py) re-exports them.
//
// Threads and the GIL: every call that talks to a board or trains releases the GIL while the C++
// side works, so other Python threads run meanwhile; Python objects are touched only with the GIL
// held. Errors: every C++ exception leaving a binding becomes one of the module's exceptions
// (errors.cpp), with the C++ message unchanged.
#pragma once

#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "instruments/board_types.hpp"

namespace metaplast::python {

namespace py = pybind11;

// The exception hierarchy and the translator of C++ exceptions (errors.cpp).
void bind_errors(py::module_& m);
// metaplast.Board (board.cpp).
void bind_board(py::module_& m);
// metaplast.Training, metaplast.open_run's reader (runs.cpp).
void bind_runs(py::module_& m);
// metaplast.characterize and the campaigns (campaigns.cpp).
void bind_campaigns(py::module_& m);

// JSON <-> Python (convert.cpp): dict, list, str, int, float, bool and None both ways. A value of
// another type (or a dict key that is not a str) throws std::invalid_argument naming `where` and
// the JSON path, so it surfaces as metaplast.InputError.
nlohmann::json to_json(py::handle value, const std::string& where);
py::object from_json(const nlohmann::json& value);

// What identify reported (board.cpp), as Board.info and characterize()'s board_levels show it:
// model, serial, firmware_version, protocol_version, rows, cols, adc_bits, dac_bits, boot_id,
// capabilities (names), levels ({icc_ua, gate_voltage_v, target_conductance_us}), limits.
nlohmann::json board_info_json(const instruments::BoardInfo& info);

// Keyword arguments as command-line tokens of a metaplast command: name=value becomes
// "--name" "value" with underscores as hyphens (train_limit=2000 -> --train-limit 2000); True
// becomes the bare flag, False and None leave the option out; a list or tuple joins its items
// with commas (tasks=["mnist", "fashion"] -> --tasks mnist,fashion). Throws std::invalid_argument
// for a value of another type.
std::vector<std::string> command_arguments(const py::kwargs& options, const std::string& where);

// A command-line parse error of `call` ("train()") as one line for InputError, saying that the
// options are the command's.
std::string parse_error_message(const std::string& call, const std::exception& error);

}  // namespace metaplast::python
