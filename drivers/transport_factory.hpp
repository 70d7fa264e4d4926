// make_transport(address): the one way the host opens a link from a user-supplied address.
// Built-in schemes: serial: (also a bare /dev/... path) and tcp:. Other schemes (sim:, for the
// in-process simulated board) are registered by the application at start-up, so drivers/ never
// depends on what they make. Pipes are not addressable: make them with make_pipe_pair().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/address.hpp"
#include "drivers/transport.hpp"

namespace metaplast::drivers {

// Makes an open transport for an already-parsed address of its scheme. Throws AddressError for
// bad parameters and TransportError when the link cannot be opened.
using TransportFactory = std::function<std::unique_ptr<Transport>(const Address&)>;
// Checks an address of its scheme without opening anything; throws AddressError.
using AddressCheck = std::function<void(const Address&)>;

// Opens the transport that `address` names.
// Throws AddressError when the address is malformed or its scheme unknown (the message lists the
// accepted forms), TransportError when the port/host cannot be opened or reached.
std::unique_ptr<Transport> make_transport(std::string_view address);

// Checks `address` as make_transport would (syntax, known scheme, the scheme's parameters)
// without opening anything, e.g. when a campaign file is checked. A registered scheme without
// an AddressCheck is checked for its syntax only. Throws AddressError.
void check_address(std::string_view address);

// Registers (or replaces) a scheme. `example` is shown in error messages, e.g. "sim:?seed=1"
// (default "<scheme>:..."). Throws std::invalid_argument for the built-in schemes "serial" and
// "tcp", or a scheme name that is not lower-case letters, digits, '+', '-' or '.'. Thread-safe.
// `check` validates an address of the scheme for check_address() (optional).
void register_transport_scheme(std::string scheme, TransportFactory factory,
                               std::string example = {}, AddressCheck check = {});

// Removes a registered scheme (no effect if absent; built-ins cannot be removed). For tests.
void unregister_transport_scheme(std::string_view scheme);

// The accepted forms, built-ins first then registered schemes, e.g.
// {"serial:/dev/ttyUSB0?baud=921600", "tcp:127.0.0.1:5025", "sim:?seed=1"}.
std::vector<std::string> accepted_address_forms();

}  // namespace metaplast::drivers
