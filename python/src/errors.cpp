// The module's exceptions (docs/python.md, "Errors"): one small hierarchy under metaplast.Error,
// each the Python face of a C++ exception of the product, with its message unchanged.
//
//   Error (Exception)
//   +-- InputError (also ValueError)    bad option, setting, file or argument:
//   std::invalid_argument |   +-- AddressError                 an address no board can have:
//   drivers::AddressError |   +-- LimitError                   beyond the station's limits:
//   instruments::LimitError
//   +-- BoardError (also RuntimeError)   the board or its link failed: instruments::BoardError
//   |   +-- LinkError                     no valid reply after every retry, or no connection
//   |   +-- ProtocolError                 the board refused the request (status code in .status)
//   |   +-- RebootedError                 the board reset meanwhile (boot ids in .old_boot_id, ...)
//   +-- StateError (also RuntimeError)   a call in the wrong lifecycle state (LifecycleError)
//   +-- RunAborted                       a run stopped before its epoch ended (resumable)
//   +-- OperationError (also RuntimeError) anything else that failed: a file that cannot be read
//                                        or written, a run that cannot go on (std::exception)
#include "app/learning/trainer.hpp"
#include "drivers/address.hpp"
#include "drivers/transport.hpp"
#include "instruments/array_board.hpp"
#include "instruments/station_limits.hpp"
#include "python/src/bindings.hpp"

namespace metaplast::python {

namespace {

struct Exceptions {
  py::object error, input, address, limit, board, link, protocol, rebooted, state, aborted,
      operation;
};

// Created once at import, kept for the translator (which has no module at hand).
Exceptions* exceptions = nullptr;

py::object define(py::module_& m, const char* name, py::tuple bases, const char* doc) {
  py::dict namespace_;
  namespace_["__doc__"] = doc;
  namespace_["__module__"] = "metaplast";
  py::object type = py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(&PyType_Type))(
      name, bases, namespace_);
  m.attr(name) = type;
  return type;
}

void raise(const py::object& type, const std::exception& e) {
  PyErr_SetString(type.ptr(), e.what());
}

void translate(std::exception_ptr pointer) {
  const Exceptions& x = *exceptions;
  try {
    std::rethrow_exception(pointer);
  } catch (const py::error_already_set&) {
    throw;  // a Python exception (a callback's): pybind11 restores it
  } catch (const py::builtin_exception&) {
    throw;  // pybind11's own (cast errors, ...): its translator maps them
  } catch (const instruments::BoardRebootedError& e) {
    py::object error = x.rebooted(e.what());
    error.attr("old_boot_id") = e.old_boot_id;
    error.attr("new_boot_id") = e.new_boot_id;
    PyErr_SetObject(x.rebooted.ptr(), error.ptr());
  } catch (const instruments::BoardStatusError& e) {
    py::object error = x.protocol(e.what());
    error.attr("status") = static_cast<int>(e.status());
    error.attr("detail") = e.detail();
    PyErr_SetObject(x.protocol.ptr(), error.ptr());
  } catch (const instruments::LinkError& e) {
    raise(x.link, e);
  } catch (const drivers::TransportError& e) {
    raise(x.link, e);
  } catch (const instruments::BoardError& e) {
    raise(x.board, e);
  } catch (const instruments::LimitError& e) {
    raise(x.limit, e);
  } catch (const drivers::AddressError& e) {
    raise(x.address, e);
  } catch (const instruments::LifecycleError& e) {
    raise(x.state, e);
  } catch (const learning::RunAborted& e) {
    raise(x.aborted, e);
  } catch (const std::invalid_argument& e) {
    raise(x.input, e);
  } catch (const std::out_of_range& e) {
    raise(x.input, e);  // cells outside the array, before anything is sent
  } catch (const std::bad_alloc&) {
    throw;  // MemoryError, by pybind11
  } catch (const std::exception& e) {
    raise(x.operation, e);
  }
}

}  // namespace

void bind_errors(py::module_& m) {
  // Never destroyed: the types outlive the module's C++ statics at interpreter shutdown.
  Exceptions& x = *new Exceptions;
  const py::object exception = py::module_::import("builtins").attr("Exception");
  const py::object value_error = py::module_::import("builtins").attr("ValueError");
  const py::object runtime_error = py::module_::import("builtins").attr("RuntimeError");
  x.error = define(m, "Error", py::make_tuple(exception), "Base of every metaplast error.");
  x.input = define(m, "InputError", py::make_tuple(x.error, value_error),
                   "A bad option, setting, file or argument: the message says what, where and "
                   "what to do. Nothing was sent to a board.");
  x.address = define(m, "AddressError", py::make_tuple(x.input),
                     "A board address no board can have; the message lists the accepted forms.");
  x.limit = define(m, "LimitError", py::make_tuple(x.input),
                   "A value beyond the station's or the board's limits; nothing was sent.");
  x.board = define(m, "BoardError", py::make_tuple(x.error, runtime_error),
                   "The board or its link failed; the board object is left safe (or closed).");
  x.link = define(m, "LinkError", py::make_tuple(x.board),
                  "No valid reply from the board after every retry, or no connection at all.");
  x.protocol = define(m, "ProtocolError", py::make_tuple(x.board),
                      "The board refused the request. Attributes: status (the protocol's status "
                      "code, docs/protocol.md), detail (the field or cell it names).");
  x.rebooted = define(m, "RebootedError", py::make_tuple(x.board),
                      "The board reset meanwhile and lost its configuration. Attributes: "
                      "old_boot_id, new_boot_id. Configure it again and read back.");
  x.state = define(m, "StateError", py::make_tuple(x.error, runtime_error),
                   "A board call in the wrong lifecycle state (e.g. after close()).");
  x.aborted = define(m, "RunAborted", py::make_tuple(x.error),
                     "A run stopped before its epoch ended; its last checkpoint is intact "
                     "(resume it with metaplast.train(resume=DIR)).");
  x.operation = define(m, "OperationError", py::make_tuple(x.error, runtime_error),
                       "Anything else that failed: a file that cannot be read or written, a run "
                       "that cannot go on. The message says what and where.");
  exceptions = &x;
  py::register_exception_translator(&translate);
}

}  // namespace metaplast::python
