// Transport addresses: "scheme:target?key=value&key=value".
//   serial:/dev/ttyUSB0?baud=921600&flow=none       serial:/dev/serial/by-id/usb-...-if00-port0
//   /dev/ttyUSB0 (a bare absolute path means serial:)  tcp:127.0.0.1:5025?connect_timeout_ms=2000
//   sim:?seed=1 (registered by the application)
// parse_address() only splits; each scheme's factory checks its own keys with the typed getters,
// which throw AddressError naming the address, the key and what is accepted.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace metaplast::drivers {

// A malformed or unknown address (user input): the message says what and what is accepted.
class AddressError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct Address {
  std::string text;    // the address as given
  std::string scheme;  // lower-case, e.g. "serial", "tcp", "sim"
  std::string target;  // between "scheme:" and "?", e.g. "/dev/ttyUSB0", "127.0.0.1:5025", ""
  std::vector<std::pair<std::string, std::string>> params;  // in order; keys are unique

  bool has(std::string_view key) const;

  // The value of `key`, or `fallback` when absent.
  std::string get_string(std::string_view key, std::string_view fallback) const;
  // Decimal integer in [min_value, max_value]; throws AddressError on junk or out of range.
  std::int64_t get_int(std::string_view key, std::int64_t fallback, std::int64_t min_value,
                       std::int64_t max_value) const;
  // Unsigned decimal (e.g. a 64-bit seed); throws AddressError on junk, sign or overflow.
  std::uint64_t get_uint64(std::string_view key, std::uint64_t fallback) const;
  // A real number, finite; throws AddressError on junk.
  double get_double(std::string_view key, double fallback) const;
  // 1/0, true/false, yes/no, on/off; throws AddressError otherwise.
  bool get_bool(std::string_view key, bool fallback) const;
  // One of `choices` (exact match); throws AddressError listing the choices otherwise.
  std::string get_choice(std::string_view key, std::string_view fallback,
                         std::initializer_list<std::string_view> choices) const;

  // Throws AddressError if a parameter is not in `known_keys`, listing the known keys.
  void expect_only(std::initializer_list<std::string_view> known_keys) const;

  // Throws AddressError("invalid address '<text>': <what>; expected e.g. <example>").
  [[noreturn]] void fail(std::string_view what, std::string_view example) const;
};

// Splits an address. Throws AddressError for: empty text, no "scheme:" (unless a bare absolute
// path, taken as serial:), an empty or non-alphanumeric scheme, an empty or duplicate key, a key
// without "=", or an empty parameter between '&'. Percent-escapes are not decoded.
Address parse_address(std::string_view text);

// "HOST:PORT" (or "[v6addr]:PORT") -> {host, port}; port 1..65535. Throws AddressError using
// `address` in the message.
std::pair<std::string, std::uint16_t> split_host_port(const Address& address);

}  // namespace metaplast::drivers
