// The one way the product writes (and reads back) CSV files (RFC 4180): a header, then rows of
// exactly the header's width; a text field holding a comma, a double quote or a line break is
// quoted with its quotes doubled, so a user's label or a board's string cannot shift columns;
// numbers are written in the format the caller states (the files' formats: docs/run-records.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace metaplast::util {

class CsvWriter {
 public:
  // Starts the text with the header line.
  explicit CsvWriter(std::initializer_list<std::string_view> columns);
  // The same after comment lines, each written as "# <line>" (the conditions of a measurement:
  // gnuplot, numpy.loadtxt and pandas' comment='#' skip them).
  CsvWriter(const std::vector<std::string>& comment_lines,
            std::initializer_list<std::string_view> columns);

  CsvWriter& text(std::string_view value);
  CsvWriter& integer(std::int64_t value);
  CsvWriter& unsigned_integer(std::uint64_t value);
  template <class T>
  requires std::is_integral_v<T> CsvWriter& integer(T value) {
    if constexpr (std::is_signed_v<T>) return integer(static_cast<std::int64_t>(value));
    return unsigned_integer(static_cast<std::uint64_t>(value));
  }
  // `printf_format` formats one double ("%g" is what a default std::ostream writes).
  CsvWriter& number(double value, const char* printf_format = "%g");
  // Ends the row; throws std::logic_error when it has not exactly the header's width.
  CsvWriter& end_row();

  const std::string& str() const { return text_; }
  // Hands over the text written since the last take() (or since the start) and keeps the
  // writer's header width: for files that grow by appends.
  std::string take();
  std::size_t rows() const { return rows_; }

 private:
  void begin_field();
  std::size_t columns_;
  std::size_t fields_ = 0;
  std::size_t rows_ = 0;
  std::string text_;
};

// `value` as one CSV field: as it is, or quoted with its quotes doubled when it holds a comma,
// a double quote, CR or LF.
std::string csv_field(std::string_view value);

// The fields of one CSV line (without its line break), quotes removed; throws
// std::invalid_argument on an unterminated quote or text after a closing quote.
std::vector<std::string> csv_split(std::string_view line);
// csv_split, or nothing for a line it refuses: for readers that skip a line cut by a crash.
std::optional<std::vector<std::string>> try_csv_split(std::string_view line);

}  // namespace metaplast::util
