// JSON <-> Python values, and keyword arguments as command-line tokens (bindings.hpp).
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "python/src/bindings.hpp"

namespace metaplast::python {

namespace {

// Nesting beyond this is refused, as the product's JSON reader refuses it in files.
constexpr int kMaxDepth = 64;

std::string type_name(py::handle value) {
  return py::str(py::type::handle_of(value).attr("__name__")).cast<std::string>();
}

nlohmann::json to_json_at(py::handle value, const std::string& where, const std::string& path,
                          int depth) {
  if (depth > kMaxDepth) {
    throw std::invalid_argument(where + ": " + path + ": nested deeper than 64 levels");
  }
  if (value.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) {
    try {
      return value.cast<long long>();
    } catch (const py::cast_error&) {
      throw std::invalid_argument(where + ": " + path + ": integer out of range");
    }
  }
  if (py::isinstance<py::float_>(value)) {
    const double x = value.cast<double>();
    if (!std::isfinite(x)) {
      throw std::invalid_argument(where + ": " + path + ": " + std::to_string(x) +
                                  " is not a finite number");
    }
    return x;
  }
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::isinstance<py::dict>(value)) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, item] : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(key)) {
        throw std::invalid_argument(where + ": " + path + ": a key of type " + type_name(key) +
                                    "; keys must be str");
      }
      const std::string name = key.cast<std::string>();
      out[name] = to_json_at(item, where, path + "/" + name, depth + 1);
    }
    return out;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    nlohmann::json out = nlohmann::json::array();
    std::size_t i = 0;
    for (const auto& item : value) {
      out.push_back(to_json_at(item, where, path + "/" + std::to_string(i++), depth + 1));
    }
    return out;
  }
  // NumPy scalars and 0-d arrays: their Python value.
  if (py::hasattr(value, "item") && py::hasattr(value, "dtype")) {
    py::object item = value.attr("item")();
    if (!py::isinstance(item, py::type::of(value))) {
      return to_json_at(item, where, path, depth);
    }
  }
  throw std::invalid_argument(where + ": " + (path.empty() ? "/" : path) + ": a " +
                              type_name(value) +
                              "; expected dict, list, str, int, float, bool or None");
}

std::string option_text(py::handle value, const std::string& where, const std::string& option) {
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::isinstance<py::bool_>(value)) {
    throw std::invalid_argument(where + ": " + option + ": a list item cannot be True/False");
  }
  if (py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value) ||
      py::hasattr(value, "dtype")) {
    const nlohmann::json number = to_json(value, where + " " + option);
    if (number.is_number()) return number.dump();
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    std::string joined;
    for (const auto& item : value) {
      if (!joined.empty()) joined += ',';
      joined += option_text(item, where, option);
    }
    return joined;
  }
  throw std::invalid_argument(where + ": " + option + "=" + py::repr(value).cast<std::string>() +
                              ": expected a str, a number, True/False or a list of them");
}

}  // namespace

nlohmann::json to_json(py::handle value, const std::string& where) {
  return to_json_at(value, where, "", 0);
}

py::object from_json(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return py::none();
    case nlohmann::json::value_t::boolean:
      return py::bool_(value.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return py::int_(value.get<long long>());
    case nlohmann::json::value_t::number_unsigned:
      return py::int_(value.get<unsigned long long>());
    case nlohmann::json::value_t::number_float:
      return py::float_(value.get<double>());
    case nlohmann::json::value_t::string:
      return py::str(value.get<std::string>());
    case nlohmann::json::value_t::array: {
      py::list out;
      for (const auto& item : value) out.append(from_json(item));
      return out;
    }
    case nlohmann::json::value_t::object: {
      py::dict out;
      for (const auto& [key, item] : value.items()) out[py::str(key)] = from_json(item);
      return out;
    }
    default:
      return py::none();  // binary and discarded values: never produced by the product
  }
}

std::vector<std::string> command_arguments(const py::kwargs& options, const std::string& where) {
  std::vector<std::string> tokens;
  for (const auto& [key, value] : options) {
    std::string option = "--" + key.cast<std::string>();
    for (char& c : option) c = c == '_' ? '-' : c;
    if (value.is_none()) continue;
    if (py::isinstance<py::bool_>(value)) {
      if (value.cast<bool>()) tokens.push_back(option);
      continue;
    }
    tokens.push_back(option);
    tokens.push_back(option_text(value, where, option));
  }
  return tokens;
}

std::string parse_error_message(const std::string& call, const std::exception& error) {
  std::string what = error.what();
  for (char& c : what) c = c == '\n' ? ' ' : c;
  return call + ": " + what + " (the options are the command line's, with _ for -)";
}

}  // namespace metaplast::python
