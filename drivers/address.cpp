#include "drivers/address.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace metaplast::drivers {

namespace {

std::string quoted(std::string_view s) {
  std::string out(1, '\'');  // built by appending: GCC 12 warns falsely on "'" + s + "'"
  out.append(s);
  out += '\'';
  return out;
}

std::string join(std::initializer_list<std::string_view> items) {
  std::string out;
  for (const auto item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

bool valid_scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

void Address::fail(std::string_view what, std::string_view example) const {
  std::string message = "invalid address " + quoted(text) + ": " + std::string(what);
  if (!example.empty()) message += "; expected e.g. " + std::string(example);
  throw AddressError(message);
}

bool Address::has(std::string_view key) const {
  return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == key; });
}

std::string Address::get_string(std::string_view key, std::string_view fallback) const {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return std::string(fallback);
}

std::int64_t Address::get_int(std::string_view key, std::int64_t fallback, std::int64_t min_value,
                              std::int64_t max_value) const {
  if (!has(key)) return fallback;
  const std::string value = get_string(key, "");
  std::int64_t parsed = 0;
  const auto* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, parsed);
  const std::string range =
      "an integer in [" + std::to_string(min_value) + ", " + std::to_string(max_value) + "]";
  if (value.empty() || ec != std::errc{} || ptr != end) {
    throw AddressError("invalid address " + quoted(text) + ": parameter " + std::string(key) + "=" +
                       quoted(value) + " is not " + range);
  }
  if (parsed < min_value || parsed > max_value) {
    throw AddressError("invalid address " + quoted(text) + ": parameter " + std::string(key) + "=" +
                       value + " is out of range; expected " + range);
  }
  return parsed;
}

std::uint64_t Address::get_uint64(std::string_view key, std::uint64_t fallback) const {
  if (!has(key)) return fallback;
  const std::string value = get_string(key, "");
  std::uint64_t parsed = 0;
  const auto* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, parsed);
  if (value.empty() || ec != std::errc{} || ptr != end) {
    throw AddressError("invalid address " + quoted(text) + ": parameter " + std::string(key) + "=" +
                       quoted(value) + " is not an unsigned integer in [0, " +
                       std::to_string(std::numeric_limits<std::uint64_t>::max()) + "]");
  }
  return parsed;
}

double Address::get_double(std::string_view key, double fallback) const {
  if (!has(key)) return fallback;
  const std::string value = get_string(key, "");
  char* end = nullptr;
  const double parsed = value.empty() ? 0.0 : std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(parsed) ||
      std::isspace(static_cast<unsigned char>(value.front()))) {
    throw AddressError("invalid address " + quoted(text) + ": parameter " + std::string(key) + "=" +
                       quoted(value) + " is not a finite number");
  }
  return parsed;
}

bool Address::get_bool(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const std::string value = lower(get_string(key, ""));
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  throw AddressError("invalid address " + quoted(text) + ": parameter " + std::string(key) + "=" +
                     quoted(get_string(key, "")) +
                     " is not a boolean; use 1/0, true/false, "
                     "yes/no or on/off");
}

std::string Address::get_choice(std::string_view key, std::string_view fallback,
                                std::initializer_list<std::string_view> choices) const {
  const std::string value = get_string(key, fallback);
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    throw AddressError("invalid address " + quoted(text) + ": parameter " + std::string(key) + "=" +
                       quoted(value) + " is not one of: " + join(choices));
  }
  return value;
}

void Address::expect_only(std::initializer_list<std::string_view> known_keys) const {
  for (const auto& [k, v] : params) {
    if (std::find(known_keys.begin(), known_keys.end(), k) == known_keys.end()) {
      throw AddressError("invalid address " + quoted(text) + ": unknown parameter " + quoted(k) +
                         " for scheme " + scheme + ":; known parameters: " +
                         (known_keys.size() == 0 ? std::string("none") : join(known_keys)));
    }
  }
}

Address parse_address(std::string_view text) {
  Address address;
  address.text = std::string(text);
  auto fail = [&](const std::string& what) -> AddressError {
    return AddressError("invalid address " + quoted(text) + ": " + what);
  };
  if (text.empty()) throw fail("the address is empty");

  std::string_view rest;
  if (text.front() == '/') {
    // A bare absolute device path, e.g. /dev/serial/by-id/usb-...: serial with defaults.
    address.scheme = "serial";
    rest = text;
  } else {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
      throw fail("no scheme; an address starts with 'scheme:' (or is an absolute /dev/ path)");
    }
    const std::string_view scheme = text.substr(0, colon);
    if (scheme.empty()) throw fail("the scheme before ':' is empty");
    if (!std::all_of(scheme.begin(), scheme.end(), valid_scheme_char)) {
      throw fail("scheme " + quoted(scheme) + " has characters other than letters, digits, +-.");
    }
    address.scheme = lower(scheme);
    rest = text.substr(colon + 1);
  }

  const auto question = rest.find('?');
  address.target = std::string(rest.substr(0, question));
  if (question == std::string_view::npos) return address;

  std::string_view query = rest.substr(question + 1);
  if (query.empty()) return address;  // "sim:?" is the same as "sim:"
  while (true) {
    const auto amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    if (item.empty()) throw fail("empty parameter (stray '&' or '?')");
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      throw fail("parameter " + quoted(item) + " has no value; write key=value");
    }
    const std::string key(item.substr(0, eq));
    if (key.empty()) throw fail("parameter " + quoted(item) + " has an empty key");
    if (address.has(key)) throw fail("parameter " + quoted(key) + " is given twice");
    address.params.emplace_back(key, std::string(item.substr(eq + 1)));
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return address;
}

std::pair<std::string, std::uint16_t> split_host_port(const Address& address) {
  const std::string example = address.scheme + ":127.0.0.1:5025";
  const std::string& target = address.target;
  std::string host;
  std::string port_text;
  if (!target.empty() && target.front() == '[') {
    const auto close = target.find(']');
    if (close == std::string::npos || close + 1 >= target.size() || target[close + 1] != ':') {
      address.fail("an IPv6 host must be written [addr]:PORT", example);
    }
    host = target.substr(1, close - 1);
    port_text = target.substr(close + 2);
  } else {
    const auto colon = target.rfind(':');
    if (colon == std::string::npos) address.fail("missing ':PORT' after the host", example);
    host = target.substr(0, colon);
    port_text = target.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      address.fail("an IPv6 host must be written [addr]:PORT", example);
    }
  }
  if (host.empty()) address.fail("missing host before ':PORT'", example);
  unsigned port = 0;
  const auto* end = port_text.data() + port_text.size();
  const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
  if (port_text.empty() || ec != std::errc{} || ptr != end || port < 1 || port > 65535) {
    address.fail("port " + quoted(port_text) + " is not a number in 1..65535", example);
  }
  return {host, static_cast<std::uint16_t>(port)};
}

}  // namespace metaplast::drivers
