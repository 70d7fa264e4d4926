// The simulated board as a peer on a link: options (from a sim: address or the command line),
// building a firmware from them, the serve loop over any drivers::Transport (TCP, pseudo-terminal,
// in-process pipe), and the in-process transport that app/ registers as the sim: scheme.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "drivers/address.hpp"
#include "drivers/tcp_transport.hpp"
#include "drivers/transport.hpp"
#include "sim/board_firmware.hpp"

namespace metaplast::sim {

struct SimOptions {
  std::uint64_t seed = 1;                           // physics seed of a new chip
  std::optional<std::filesystem::path> state_file;  // non-volatile chip state (kept if it exists)
  bool formed = false;  // a new chip comes formed (LCS) from the factory
  std::optional<std::filesystem::path> calibration_file;  // device model (default: built-in)
  FaultOptions faults;
  std::uint32_t baud = 921'600;  // link speed in the device-time model
  std::uint32_t capabilities = 0x7F;
  double clock_scale = 0.0;  // accelerated device clock (FirmwareOptions::clock_scale); 0: off
};

// Keys of a sim: address / --faults list, for help texts.
inline constexpr const char* kSimAddressHelp =
    "sim:?seed=N&state=FILE&formed=1&calibration=FILE&baud=921600&program_verify=1&trace=1"
    "&batch_status=1&level_table=1&drop=RATE&corrupt=RATE&delay=RATE&delay_ms=MS&reboot_at=N[,N...]"
    "&stuck=CELL[,"
    "CELL...]"
    "&dead_after=N&fault_seed=N&clock=SCALE";

// From a parsed sim: address. Throws drivers::AddressError naming the key and what it accepts.
SimOptions parse_sim_options(const drivers::Address& address);
// Fault keys only (drop, corrupt, delay, delay_ms, reboot_at, stuck, dead_after, fault_seed),
// '&'-separated as in an address, e.g. "drop=0.02&corrupt=0.01&reboot_at=50". Throws
// drivers::AddressError.
FaultOptions parse_fault_spec(const std::string& spec);

// The serial a simulated chip reports (and so its chip id, "board-<serial>"): one per seed and
// per state file: `base` (the calibration's board_serial, "SIM-0001") + "-s<seed>", + "-<8 hex
// digits of the state file's absolute path>" with one (the seed of a loaded state file is the
// file's); `base` is shortened so that the whole fits the 32 bytes of IDENTIFY.
std::string simulated_board_serial(const std::string& base, std::uint64_t seed,
                                   const std::optional<std::filesystem::path>& state_file);

// Builds the board: loads the state file if it exists (with the calibration file's model if
// given), else manufactures a chip from the seed (formed if asked). Throws
// devices::CalibrationError, StateFileError.
std::unique_ptr<BoardFirmware> make_firmware(const SimOptions& options);

struct ServeOptions {
  std::chrono::milliseconds poll_interval{20};    // watchdog resolution when idle
  std::chrono::milliseconds save_interval{2000};  // periodic state save when changed
  std::chrono::milliseconds write_timeout{5000};
  // A link that delivers no byte for this long is dropped (serve returns false). 0: never.
  // metaplast-simboard sets it for TCP clients (--idle-timeout-s), so that a host that connects
  // and goes silent does not hold the board for ever.
  std::chrono::milliseconds idle_timeout{0};
  // How long an extra TCP client is answered BUSY before it is disconnected.
  std::chrono::milliseconds refusal_window{2000};
  // Realistic link (off by default; docs/protocol.md, "The simulated board's realistic-link
  // mode"): every reply is held until the time its request takes on a real board
  // (BoardFirmware::take_reply_time_ns: operations and both frames at the timing model's baud)
  // has passed since the request arrived, at most kMaxReplyHold, so a host's run takes the
  // wall-clock time a bench would. Seeded results do not depend on it.
  bool realistic_link = false;
  const std::atomic<bool>* stop = nullptr;  // serve returns soon after it becomes true
  // When set to true, the board power-cycles (reboot on command) and the flag is cleared.
  std::atomic<bool>* reboot_request = nullptr;
  // Receives one line per connection event (client served, refused, dropped as idle); may be
  // empty. Called from the serving thread and from the threads answering refused clients.
  std::function<void(const std::string&)> log;
};

// The longest a reply is held in the realistic-link mode (a 640-entry program-and-verify at 127
// attempts per cell takes under 1 s of device time).
inline constexpr std::chrono::seconds kMaxReplyHold{10};

// Reads requests from `link`, feeds the firmware and writes its replies, until the link closes,
// stays silent longer than options.idle_timeout, or *stop is set. Saves the state (if any)
// before returning. Returns true if stopped by *stop, false if the link closed or was dropped.
bool serve(drivers::Transport& link, BoardFirmware& firmware, const ServeOptions& options = {});

// Serves one TCP client at a time (the board stays powered between connections), until
// *options.stop is set. A client that connects while another is served is refused at once: every
// request it sends within options.refusal_window is answered BUSY with error_detail
// protocols::busy_detail::kServingAnotherHost (the host's error then says so), then it is
// disconnected. A real board has one serial port; two hosts interleaving requests would break
// the reply cache's at-most-once promise (docs/protocol.md section 5), so they are not mixed.
void serve_tcp(drivers::TcpListener& listener, BoardFirmware& firmware,
               const ServeOptions& options);

// The host's end of an in-process pipe whose other end is served by `firmware` on its own
// thread. Closing or destroying the returned transport stops the thread and saves the state.
std::unique_ptr<drivers::Transport> make_in_process_transport(
    std::unique_ptr<BoardFirmware> firmware, std::string address = "sim:");
// Same, building the firmware from options (make_firmware).
std::unique_ptr<drivers::Transport> make_in_process_transport(const SimOptions& options,
                                                              std::string address = "sim:");

// Registers the sim: address scheme in the transport factory (make_in_process_transport of
// parse_sim_options). drivers/ never knows the simulator: the composition root calls this
// (app/board, and the instruments tests). Idempotent and thread-safe.
void register_transport_scheme();

}  // namespace metaplast::sim
