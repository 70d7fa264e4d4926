#include "common/json_file.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

namespace metaplast::common {

namespace {

using json = nlohmann::json;

// "line L, column C" of byte `position` (1-based, as editors count).
std::string line_and_column(std::string_view text, std::size_t position) {
  position = std::min(position, text.size());
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < position; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1,
// column 2: " prefix (we say where ourselves).
std::string reason_of(const nlohmann::json::exception& e) {
  std::string what = e.what();
  if (const auto bracket = what.find("] "); bracket != std::string::npos) {
    what = what.substr(bracket + 2);
  }
  if (what.rfind("parse error", 0) == 0) {
    if (const auto colon = what.find(": "); colon != std::string::npos) {
      what = what.substr(colon + 2);
    }
  }
  return what;
}

// Builds the document like nlohmann's DOM parser, with a depth limit and duplicate-key check.
// The parser itself is iterative; the depth limit also keeps every later recursive walk
// (dump(), the loaders, the destructor) shallow.
class StrictDomBuilder : public nlohmann::json_sax<json> {
 public:
  StrictDomBuilder(std::string_view text, const std::string& source)
      : text_(text), source_(source) {}

  json result;

  bool null() override { return add(json(nullptr)); }
  bool boolean(bool v) override { return add(json(v)); }
  bool number_integer(number_integer_t v) override { return add(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return add(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return add(json(v)); }
  bool string(string_t& v) override { return add(json(std::move(v))); }
  bool binary(binary_t&) override { return add(json(nullptr)); }  // not produced by text JSON

  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    json& object = *stack_.back();
    if (object.contains(k)) {
      fail((path_.empty() ? std::string() : pointer()) + "/" + k +
           ": key given twice in one object (remove one: the reader does not pick a winner)");
    }
    key_ = k;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    // 1e400 is JSON by the grammar, but no double holds it: say so rather than "not JSON".
    const bool overflow = dynamic_cast<const nlohmann::json::out_of_range*>(&e) != nullptr;
    fail((overflow ? "" : "not valid JSON at ") + line_and_column(text_, position) + ": " +
         reason_of(e));
  }

 private:
  std::string_view text_;
  const std::string& source_;
  std::vector<json*> stack_;
  std::vector<std::string> path_;  // JSON path segments of the open containers' children
  std::string key_;

  [[noreturn]] void fail(const std::string& what) const {
    throw JsonFileError(source_ + ": " + what);
  }

  std::string pointer() const {
    std::string p;
    for (const auto& s : path_) p += "/" + s;
    return p.empty() ? "/" : p;
  }

  // Where the next value goes; returns it.
  json* place(json&& value) {
    if (stack_.empty()) {
      result = std::move(value);
      return &result;
    }
    json& parent = *stack_.back();
    if (parent.is_object()) return &(parent[key_] = std::move(value));
    parent.push_back(std::move(value));
    return &parent.back();
  }

  bool add(json&& value) {
    place(std::move(value));
    return true;
  }

  bool open(json&& container) {
    if (static_cast<int>(stack_.size()) >= kMaxJsonDepth) {
      fail(pointer() + ": nested deeper than " + std::to_string(kMaxJsonDepth) +
           " levels (no metaplast file needs that many; is it the right file?)");
    }
    if (!stack_.empty()) {
      const json& parent = *stack_.back();
      path_.push_back(parent.is_object() ? key_ : std::to_string(parent.size()));
    }
    stack_.push_back(place(std::move(container)));
    return true;
  }

  bool close() {
    if (!path_.empty()) path_.pop_back();  // the root has no segment
    stack_.pop_back();
    return true;
  }
};

}  // namespace

nlohmann::json parse_json_text(std::string_view text, const std::string& source) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw JsonFileError(source + ": is empty (expected a JSON document)");
  }
  StrictDomBuilder builder(text, source);
  try {
    json::sax_parse(text, &builder, json::input_format_t::json, /*strict=*/true,
                    /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    // Only reached for errors the parser raises outside parse_error() (none known).
    throw JsonFileError(source + ": not valid JSON: " + reason_of(e));
  }
  return std::move(builder.result);
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxJsonFileBytes) {
    throw JsonFileError(path.string() + ": is " + std::to_string(size) +
                        " bytes, larger than any metaplast JSON file may be (" +
                        std::to_string(kMaxJsonFileBytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JsonFileError("cannot read " + path.string() + " (check the path)");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw JsonFileError("cannot read " + path.string() + ": read error");
  return parse_json_text(text.str(), path.string());
}

std::string describe_json(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return std::string(value.type_name()) + " " + text;
}

std::int64_t integer_in_range(const nlohmann::json& value, const std::string& source,
                              const std::string& path, std::int64_t min, std::int64_t max) {
  const auto bad = [&]() {
    throw JsonFileError(source + ": " + path + ": expected an integer in " + std::to_string(min) +
                        ".." + std::to_string(max) + ", got " + describe_json(value));
  };
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(max) || static_cast<std::int64_t>(v) < min) bad();
    return static_cast<std::int64_t>(v);
  }
  if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    if (v < min || v > max) bad();
    return v;
  }
  if (value.is_number_float()) {
    const double v = value.get<double>();
    // Compare as doubles before converting: a double beyond int64 must not reach the cast.
    if (!std::isfinite(v) || v != std::floor(v) || v < static_cast<double>(min) ||
        v > static_cast<double>(max)) {
      bad();
    }
    return static_cast<std::int64_t>(v);
  }
  bad();
  return 0;
}

std::string option_value_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    const double v = value.get<double>();
    const auto narrow = static_cast<float>(v);
    if (std::isfinite(v) && static_cast<double>(narrow) == v) {
      char text[32];
      const auto end = std::to_chars(text, text + sizeof text, narrow).ptr;
      return std::string(text, end);
    }
  }
  return value.dump();
}

}  // namespace metaplast::common
