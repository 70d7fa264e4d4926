// metaplast-simboard: the simulated array board as its own process, on a TCP port or a
// pseudo-terminal, so the host's TCP and serial drivers talk to it exactly as to a real board.
// Prints one machine-readable line on stdout (the address to give --device), then serves until
// SIGINT/SIGTERM; the chip state (--state) is saved after every completed batch, every 2 s when
// changed, and on exit. SIGUSR1 power-cycles the board (boot id changes, cells persist).
// TCP: one client at a time; another is answered BUSY and disconnected; a client silent for
// --idle-timeout-s is dropped. Connection events go to stderr. --realistic-link holds every reply
// for the time its request would take on a real board over a UART at --baud.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "drivers/pseudo_terminal.hpp"
#include "drivers/tcp_transport.hpp"
#include "sim/server.hpp"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reboot{false};

void on_signal(int) { g_stop.store(true); }
void on_reboot_signal(int) { g_reboot.store(true); }

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace metaplast;
  CLI::App app{"Simulated 128x128 1T1R array test board (protocol v1, docs/protocol.md)",
               "metaplast-simboard"};
  sim::SimOptions options;
  std::string tcp = "127.0.0.1:0";
  bool use_pty = false;
  bool listen_any = false;
  std::string state_file, calibration_file, faults, write_calibration;
  bool no_program_verify = false;
  bool realistic_link = false;
  double idle_timeout_s = 60;
  app.add_option("--seed", options.seed, "physics seed of a new chip")->capture_default_str();
  auto* tcp_option = app.add_option("--tcp", tcp, "listen on HOST:PORT (port 0: any free port)")
                         ->capture_default_str();
  app.add_flag("--pty", use_pty, "serve on a new pseudo-terminal instead of TCP")
      ->excludes(tcp_option);
  app.add_flag("--listen-any", listen_any, "allow a non-loopback --tcp host (0.0.0.0 by default)");
  app.add_option("--state", state_file,
                 "non-volatile chip state file (created if missing, kept across restarts)");
  app.add_flag("--formed", options.formed, "a new chip comes formed (cells in LCS)");
  app.add_option("--calibration", calibration_file, "device model (docs/calibration.md)");
  app.add_option("--faults", faults,
                 "fault switches, e.g. \"drop=0.02&corrupt=0.01&delay=0.05&delay_ms=50"
                 "&reboot_at=100,250&stuck=5,77&dead_after=1000&fault_seed=3\"");
  app.add_option("--baud", options.baud, "link speed of the device-time model")
      ->capture_default_str();
  app.add_option("--clock", options.clock_scale,
                 "accelerated device clock: seconds of device time per second of wall-clock time "
                 "(3600: an hour per second, for retention tests; 0: only operations advance it)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  app.add_flag("--realistic-link", realistic_link,
               "hold every reply until the time its request takes on a real board has passed "
               "(its operations, and both frames at --baud, 8N1; at most 10 s a reply), so a "
               "host's run takes the wall-clock time of a bench (docs/protocol.md); results do "
               "not change");
  app.add_flag("--no-program-verify", no_program_verify,
               "firmware without the PROGRAM_VERIFY opcode (the host runs its own loop)");
  app.add_option("--idle-timeout-s", idle_timeout_s,
                 "drop a TCP client that sends nothing for this long (0: never); while one client "
                 "is served, another is answered BUSY and disconnected")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--write-default-calibration", write_calibration,
                 "write the built-in calibration to FILE and exit");
  CLI11_PARSE(app, argc, argv);

  try {
    if (!write_calibration.empty()) {
      devices::save_calibration(devices::Calibration::defaults(), write_calibration);
      return 0;
    }
    if (!state_file.empty()) options.state_file = state_file;
    if (!calibration_file.empty()) options.calibration_file = calibration_file;
    if (!faults.empty()) {
      try {
        options.faults = sim::parse_fault_spec(faults);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("--faults \"" + faults + "\": " + e.what());
      }
    }
    if (no_program_verify) {
      options.capabilities &=
          ~(protocols::capability::kProgramVerify | protocols::capability::kTrace);
    }
    auto firmware = sim::make_firmware(options);

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGUSR1, on_reboot_signal);  // reboot on command: kill -USR1 PID
    sim::ServeOptions serve_options;
    serve_options.stop = &g_stop;
    serve_options.reboot_request = &g_reboot;
    serve_options.realistic_link = realistic_link;
    serve_options.log = [](const std::string& line) {
      std::cerr << "metaplast-simboard: " << line << std::endl;
    };

    if (use_pty) {
      drivers::PseudoTerminal pty;
      std::cout << pty.client_address(static_cast<int>(options.baud)) << std::endl;
      sim::serve(pty, *firmware, serve_options);
    } else {
      const auto colon = tcp.rfind(':');
      std::string host = colon == std::string::npos ? "127.0.0.1" : tcp.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      const std::string port_text = colon == std::string::npos ? tcp : tcp.substr(colon + 1);
      int port = -1;
      try {
        std::size_t used = 0;
        port = std::stoi(port_text, &used);
        if (used != port_text.size()) port = -1;
      } catch (const std::exception&) {
      }
      if (port < 0 || port > 65535) {
        throw std::invalid_argument("--tcp " + tcp + ": expected HOST:PORT with PORT 0..65535");
      }
      if (listen_any && is_loopback(host)) host = "0.0.0.0";
      if (!is_loopback(host) && !listen_any) {
        throw std::invalid_argument("--tcp " + tcp +
                                    ": not a loopback address; the simulated board listens on "
                                    "127.0.0.1 unless --listen-any is given");
      }
      serve_options.idle_timeout =
          std::chrono::milliseconds(static_cast<std::int64_t>(idle_timeout_s * 1000));
      drivers::TcpListener listener(host, static_cast<std::uint16_t>(port));
      std::cout << listener.address() << std::endl;
      sim::serve_tcp(listener, *firmware, serve_options);
    }
    firmware->save_state();
  } catch (const std::exception& e) {
    std::cerr << "metaplast-simboard: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
