#include "app/util/csv.hpp"

#include <cstdio>
#include <stdexcept>
#include <utility>

namespace metaplast::util {

CsvWriter::CsvWriter(std::initializer_list<std::string_view> columns)
    : CsvWriter(std::vector<std::string>{}, columns) {}

CsvWriter::CsvWriter(const std::vector<std::string>& comment_lines,
                     std::initializer_list<std::string_view> columns)
    : columns_(columns.size()) {
  for (const auto& line : comment_lines) text_ += "# " + line + "\n";
  for (std::string_view column : columns) text(column);
  end_row();
  rows_ = 0;
}

void CsvWriter::begin_field() {
  if (fields_ > 0) text_ += ',';
  ++fields_;
}

CsvWriter& CsvWriter::text(std::string_view value) {
  begin_field();
  text_ += csv_field(value);
  return *this;
}

CsvWriter& CsvWriter::integer(std::int64_t value) {
  begin_field();
  text_ += std::to_string(value);
  return *this;
}

CsvWriter& CsvWriter::unsigned_integer(std::uint64_t value) {
  begin_field();
  text_ += std::to_string(value);
  return *this;
}

CsvWriter& CsvWriter::number(double value, const char* printf_format) {
  begin_field();
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, printf_format, value);
  if (n < 0 || static_cast<std::size_t>(n) >= sizeof buf) {
    throw std::logic_error(std::string("CSV number format '") + printf_format +
                           "' does not give one short field");
  }
  text_.append(buf, static_cast<std::size_t>(n));
  return *this;
}

CsvWriter& CsvWriter::end_row() {
  if (fields_ != columns_) {
    throw std::logic_error("CSV row of " + std::to_string(fields_) + " fields under a header of " +
                           std::to_string(columns_));
  }
  text_ += '\n';
  fields_ = 0;
  ++rows_;
  return *this;
}

std::string CsvWriter::take() {
  if (fields_ != 0) throw std::logic_error("CSV text taken in the middle of a row");
  return std::exchange(text_, std::string());
}

std::string csv_field(std::string_view value) {
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::vector<std::string> csv_split(std::string_view line) {
  std::vector<std::string> fields(1);
  std::size_t i = 0;
  while (i <= line.size()) {
    std::string& field = fields.back();
    if (i < line.size() && line[i] == '"') {
      // A quoted field: up to the closing quote; "" is one quote.
      for (++i;; ++i) {
        if (i >= line.size()) throw std::invalid_argument("unterminated quoted CSV field");
        if (line[i] != '"') {
          field += line[i];
        } else if (i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          ++i;
          break;
        }
      }
      if (i < line.size() && line[i] != ',') {
        throw std::invalid_argument("text after a quoted CSV field");
      }
    } else {
      while (i < line.size() && line[i] != ',') field += line[i++];
    }
    if (i >= line.size()) break;
    ++i;  // the comma
    fields.emplace_back();
  }
  return fields;
}

std::optional<std::vector<std::string>> try_csv_split(std::string_view line) {
  try {
    return csv_split(line);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

}  // namespace metaplast::util
