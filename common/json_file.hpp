// The one JSON reader of the product: station, campaign, calibration, config.json, chip registry,
// run records. Stricter than nlohmann::json::parse, as strict as the wire decoder:
//  - nesting deeper than kMaxJsonDepth is an error (no recursion on input: no stack overflow),
//  - a key given twice in one object is an error (the last would silently win),
//  - a number that does not fit a double (1e400) is an error,
//  - every message says the source (file), where (line and column, or JSON path) and what.
// Integers are narrowed only through integer_in_range(), which states the allowed range.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace metaplast::common {

// A file that is not (strict) JSON, or a value outside its range: "<source>: <where>: <what>".
class JsonFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int kMaxJsonDepth = 64;
// Larger files are refused before parsing (the biggest product file, a chip registry, is < 1 MB).
inline constexpr std::uintmax_t kMaxJsonFileBytes = 64u << 20;

// Parses `text`; `source` names it in messages (a file path). Throws JsonFileError.
nlohmann::json parse_json_text(std::string_view text, const std::string& source);

// Reads `path` and parses it. Throws JsonFileError if the file cannot be read ("cannot read
// <path>: <reason>"), is empty, too large, or not strict JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

// The value at `path` (a JSON path for messages) as an integer in [min, max]. Accepts integers
// and integral floating numbers (1e6); throws JsonFileError "<source>: <path>: expected an
// integer in min..max, got <value>" otherwise. Range-check before any narrowing cast.
std::int64_t integer_in_range(const nlohmann::json& value, const std::string& source,
                              const std::string& path, std::int64_t min, std::int64_t max);

// An option's value as a person writes it: a string without quotes, a number in the shortest form
// that reads back as the same float when it is one (2.4, not the 2.4000000953674316 a float
// stored in JSON as a double prints), anything else as JSON.
std::string option_value_text(const nlohmann::json& value);

// A short form of `value` for messages: its type and at most 60 characters of its text.
std::string describe_json(const nlohmann::json& value);

}  // namespace metaplast::common
