#include "drivers/transport_factory.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "drivers/serial_transport.hpp"
#include "drivers/tcp_transport.hpp"

namespace metaplast::drivers {

namespace {

struct Registered {
  TransportFactory factory;
  std::string example;
  AddressCheck check;
};

struct Registry {
  std::mutex mutex;
  std::map<std::string, Registered, std::less<>> schemes;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

const std::vector<std::string>& builtin_forms() {
  static const std::vector<std::string> forms = {"serial:/dev/ttyUSB0?baud=921600",
                                                 "tcp:127.0.0.1:5025"};
  return forms;
}

bool is_builtin(std::string_view scheme) { return scheme == "serial" || scheme == "tcp"; }

std::string forms_list() {
  std::string out;
  for (const auto& form : accepted_address_forms()) {
    if (!out.empty()) out += ", ";
    out += form;
  }
  return out;
}

}  // namespace

std::vector<std::string> accepted_address_forms() {
  std::vector<std::string> forms = builtin_forms();
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  for (const auto& [scheme, entry] : reg.schemes) forms.push_back(entry.example);
  return forms;
}

void register_transport_scheme(std::string scheme, TransportFactory factory, std::string example,
                               AddressCheck check) {
  if (scheme.empty() || !std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
      })) {
    throw std::invalid_argument("register_transport_scheme: scheme '" + scheme +
                                "' must be non-empty lower-case letters, digits, '+', '-' or '.'");
  }
  if (is_builtin(scheme)) {
    throw std::invalid_argument("register_transport_scheme: '" + scheme +
                                "' is a built-in scheme and cannot be replaced");
  }
  if (!factory) throw std::invalid_argument("register_transport_scheme: empty factory");
  if (example.empty()) example = scheme + ":...";
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  reg.schemes[scheme] = Registered{std::move(factory), std::move(example), std::move(check)};
}

void unregister_transport_scheme(std::string_view scheme) {
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  if (const auto it = reg.schemes.find(scheme); it != reg.schemes.end()) reg.schemes.erase(it);
}

namespace {

Address parse_with_forms(std::string_view text) {
  try {
    return parse_address(text);
  } catch (const AddressError& e) {
    throw AddressError(std::string(e.what()) + "; accepted forms: " + forms_list());
  }
}

[[noreturn]] void unknown_scheme(const Address& address) {
  throw AddressError("invalid address '" + address.text + "': unknown scheme '" + address.scheme +
                     ":'; accepted forms: " + forms_list());
}

}  // namespace

void check_address(std::string_view text) {
  const Address address = parse_with_forms(text);
  if (address.scheme == "serial") {
    SerialTransport::settings_for(address);
    return;
  }
  if (address.scheme == "tcp") return TcpTransport::check(address);
  std::optional<AddressCheck> check;
  {
    auto& reg = registry();
    std::lock_guard lock(reg.mutex);
    if (const auto it = reg.schemes.find(address.scheme); it != reg.schemes.end()) {
      check = it->second.check;
    }
  }
  if (!check) unknown_scheme(address);
  if (*check) (*check)(address);
}

std::unique_ptr<Transport> make_transport(std::string_view text) {
  const Address address = parse_with_forms(text);
  if (address.scheme == "serial") return SerialTransport::open(address);
  if (address.scheme == "tcp") return TcpTransport::open(address);
  TransportFactory factory;
  {
    auto& reg = registry();
    std::lock_guard lock(reg.mutex);
    if (const auto it = reg.schemes.find(address.scheme); it != reg.schemes.end()) {
      factory = it->second.factory;
    }
  }
  if (!factory) unknown_scheme(address);
  auto transport = factory(address);  // outside the lock: a factory may take its time
  if (!transport) {
    throw TransportError("the factory for scheme '" + address.scheme +
                         ":' made no transport for '" + address.text + "'");
  }
  return transport;
}

}  // namespace metaplast::drivers
