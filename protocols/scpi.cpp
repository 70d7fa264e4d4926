#include "protocols/scpi.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace metaplast::protocols::scpi {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

void check_header(std::string_view header) {
  if (trim(header).empty()) throw std::invalid_argument("scpi: empty command header");
  if (header.find_first_of("\r\n") != std::string_view::npos) {
    throw std::invalid_argument("scpi: command header contains a line terminator: " +
                                std::string(header));
  }
}

}  // namespace

std::string command(std::string_view header, std::span<const double> numeric_args) {
  check_header(header);
  std::string out(header);
  for (std::size_t i = 0; i < numeric_args.size(); ++i) {
    const double v = numeric_args[i];
    if (!std::isfinite(v)) {
      throw std::invalid_argument("scpi: argument " + std::to_string(i) + " of " +
                                  std::string(header) + " is not a finite number");
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.12g", v);
    out += (i == 0 ? ' ' : ',');
    out += buf;
  }
  out += '\n';
  return out;
}

std::string command(std::string_view header, std::string_view raw_args) {
  check_header(header);
  if (raw_args.find_first_of("\r\n") != std::string_view::npos) {
    throw std::invalid_argument("scpi: arguments of " + std::string(header) +
                                " contain a line terminator");
  }
  std::string out(header);
  if (!raw_args.empty()) {
    out += ' ';
    out += raw_args;
  }
  out += '\n';
  return out;
}

std::string query(std::string_view header) {
  check_header(header);
  std::string out(header);
  if (out.back() != '?') out += '?';
  out += '\n';
  return out;
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::vector<std::string> LineSplitter::feed(std::string_view bytes) {
  std::vector<std::string> lines;
  for (char c : bytes) {
    if (c == '\n') {
      if (discarding_) {
        discarding_ = false;
      } else {
        if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
        lines.push_back(std::move(partial_));
      }
      partial_.clear();
      continue;
    }
    if (discarding_) continue;
    if (partial_.size() >= max_line_bytes_) {
      discarding_ = true;
      ++overlong_;
      partial_.clear();
      continue;
    }
    partial_ += c;
  }
  return lines;
}

std::optional<double> parse_number(std::string_view line) {
  line = trim(line);
  if (!line.empty() && line.front() == '+') line.remove_prefix(1);
  if (line.empty()) return std::nullopt;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
  if (ec != std::errc() || ptr != line.data() + line.size()) return std::nullopt;
  return v;
}

std::optional<std::vector<double>> parse_numbers(std::string_view line) {
  std::vector<double> out;
  for (;;) {
    const auto comma = line.find(',');
    const auto v = parse_number(line.substr(0, comma));
    if (!v) return std::nullopt;
    out.push_back(*v);
    if (comma == std::string_view::npos) break;
    line.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<ErrorEntry> parse_error(std::string_view line) {
  line = trim(line);
  const auto comma = line.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  const std::string_view code_text = trim(line.substr(0, comma));
  ErrorEntry e;
  const char* first = code_text.data();
  if (!code_text.empty() && code_text.front() == '+') ++first;
  const auto [ptr, ec] = std::from_chars(first, code_text.data() + code_text.size(), e.code);
  if (code_text.empty() || ec != std::errc() || ptr != code_text.data() + code_text.size())
    return std::nullopt;
  std::string_view msg = trim(line.substr(comma + 1));
  if (msg.size() < 2 || msg.front() != '"' || msg.back() != '"') return std::nullopt;
  msg = msg.substr(1, msg.size() - 2);
  for (std::size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '"') {
      if (i + 1 < msg.size() && msg[i + 1] == '"')
        ++i;  // doubled quote
      else
        return std::nullopt;
    }
    e.message += msg[i];
  }
  return e;
}

}  // namespace metaplast::protocols::scpi
