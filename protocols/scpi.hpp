// SCPI line helpers for future instruments (SMUs, pulse generators): build command lines,
// split a byte stream into response lines, and parse the common response forms.
// Pure functions, no I/O. Lines are terminated by "\n" (IEEE 488.2 program message terminator).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace metaplast::protocols::scpi {

// "SOUR:VOLT 0.2\n" from a header and arguments (joined by ','). Numbers are written with up to
// 12 significant digits. Throws std::invalid_argument if the header is empty or contains a
// line terminator, or a number is not finite.
std::string command(std::string_view header, std::span<const double> numeric_args = {});
std::string command(std::string_view header, std::string_view raw_args);
// A query: the header with '?' appended (if absent), e.g. query("MEAS:CURR") == "MEAS:CURR?\n".
std::string query(std::string_view header);
// A SCPI quoted string: "abc" -> "\"abc\"", with embedded quotes doubled.
std::string quote(std::string_view text);

// Splits a byte stream into lines at '\n' (a trailing '\r' is dropped). Bounded: a line longer
// than max_line_bytes is discarded up to its terminator and reported as overlong.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes = 65536) : max_line_bytes_(max_line_bytes) {}
  // Returns the lines completed by `bytes`, in order.
  std::vector<std::string> feed(std::string_view bytes);
  std::size_t overlong_lines() const { return overlong_; }
  std::size_t buffered_bytes() const { return partial_.size(); }

 private:
  std::size_t max_line_bytes_;
  std::string partial_;
  bool discarding_ = false;
  std::size_t overlong_ = 0;
};

// Parses one number ("1.5E-3", "+9.9E37", "  42 "); nullopt if the line is not exactly one.
std::optional<double> parse_number(std::string_view line);
// Parses a comma-separated list of numbers; nullopt if any element is not a number.
std::optional<std::vector<double>> parse_numbers(std::string_view line);

// An entry of the SCPI error queue, e.g. `-113,"Undefined header"` or `0,"No error"`.
struct ErrorEntry {
  int code = 0;
  std::string message;
  bool is_error() const { return code != 0; }
};
std::optional<ErrorEntry> parse_error(std::string_view line);

}  // namespace metaplast::protocols::scpi
