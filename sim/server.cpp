#include "sim/server.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>
#include <variant>
#include <vector>

#include "drivers/pipe_transport.hpp"
#include "drivers/transport_factory.hpp"
#include "protocols/board_messages.hpp"

namespace metaplast::sim {

namespace {

template <typename T>
std::vector<T> parse_list(const drivers::Address& address, std::string_view key, T max_value) {
  std::vector<T> out;
  const std::string text = address.get_string(key, "");
  if (text.empty()) return out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    std::size_t used = 0;
    unsigned long long value = 0;
    try {
      value = std::stoull(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || item[0] == '-' ||
        value > static_cast<unsigned long long>(max_value)) {
      std::ostringstream what;
      what << "'" << key << "' must be a comma-separated list of integers 0.." << max_value
           << ", got '" << text << "'";
      std::ostringstream example;
      example << key << "=5,17";
      address.fail(what.str(), example.str());
    }
    out.push_back(static_cast<T>(value));
  }
  return out;
}

double get_rate(const drivers::Address& address, std::string_view key) {
  const double rate = address.get_double(key, 0.0);
  if (rate < 0.0 || rate > 1.0) {
    address.fail("'" + std::string(key) + "' is a probability per frame in [0, 1]",
                 std::string(key) + "=0.02");
  }
  return rate;
}

FaultOptions faults_from(const drivers::Address& a) {
  FaultOptions f;
  f.seed = a.get_uint64("fault_seed", 1);
  f.drop_rate = get_rate(a, "drop");
  f.corrupt_rate = get_rate(a, "corrupt");
  f.delay_rate = get_rate(a, "delay");
  f.delay_ms = static_cast<std::uint32_t>(a.get_int("delay_ms", 0, 0, 60'000));
  if (f.delay_rate > 0 && f.delay_ms == 0) f.delay_ms = 100;
  f.reboot_at_frames = parse_list<std::uint64_t>(a, "reboot_at", UINT64_MAX);
  f.stuck_cells = parse_list<int>(a, "stuck", Chip::kCells - 1);
  f.dead_after_frames = a.get_uint64("dead_after", 0);
  return f;
}

}  // namespace

FaultOptions parse_fault_spec(const std::string& spec) {
  const drivers::Address address = drivers::parse_address("sim:?" + spec);
  address.expect_only(
      {"drop", "corrupt", "delay", "delay_ms", "reboot_at", "stuck", "dead_after", "fault_seed"});
  return faults_from(address);
}

SimOptions parse_sim_options(const drivers::Address& a) {
  a.expect_only({"seed", "state", "formed", "calibration", "baud", "program_verify", "trace",
                 "batch_status", "level_table", "drop", "corrupt", "delay", "delay_ms", "reboot_at",
                 "stuck", "dead_after", "fault_seed", "clock"});
  if (!a.target.empty()) a.fail("a sim: address has no target, only parameters", "sim:?seed=1");
  SimOptions o;
  o.seed = a.get_uint64("seed", 1);
  if (a.has("state")) o.state_file = a.get_string("state", "");
  o.formed = a.get_bool("formed", false);
  if (a.has("calibration")) o.calibration_file = a.get_string("calibration", "");
  o.baud = static_cast<std::uint32_t>(a.get_int("baud", 921'600, 300, 100'000'000));
  if (!a.get_bool("program_verify", true)) {
    o.capabilities &= ~(protocols::capability::kProgramVerify | protocols::capability::kTrace);
  }
  if (!a.get_bool("trace", true)) o.capabilities &= ~protocols::capability::kTrace;
  if (!a.get_bool("batch_status", true)) o.capabilities &= ~protocols::capability::kBatchStatus;
  if (!a.get_bool("level_table", true)) o.capabilities &= ~protocols::capability::kLevelTable;
  o.faults = faults_from(a);
  o.clock_scale = a.get_double("clock", 0.0);
  if (!(o.clock_scale >= 0.0) || o.clock_scale > 1e9) {
    a.fail(
        "'clock' is how many seconds of device time pass per second of wall-clock time, in "
        "[0, 1e9] (0: off)",
        "clock=3600");
  }
  return o;
}

std::string simulated_board_serial(const std::string& base, std::uint64_t seed,
                                   const std::optional<std::filesystem::path>& state_file) {
  std::string suffix = "-s" + std::to_string(seed);
  if (state_file) {
    std::uint32_t hash = 2166136261u;  // FNV-1a
    for (const char c :
         std::filesystem::weakly_canonical(std::filesystem::absolute(*state_file)).string()) {
      hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
    }
    char hex[10];
    std::snprintf(hex, sizeof hex, "-%08x", hash);
    suffix += hex;
  }
  // The suffix is at most 31 bytes ("-s" + 20 digits + "-" + 8 hex digits).
  return base.substr(0, protocols::kMaxStringBytes - suffix.size()) + suffix;
}

std::unique_ptr<BoardFirmware> make_firmware(const SimOptions& options) {
  std::optional<devices::Calibration> calibration;
  if (options.calibration_file) calibration = devices::load_calibration(*options.calibration_file);
  FirmwareOptions fw;
  fw.faults = options.faults;
  fw.timing.baud = options.baud;
  fw.capabilities = options.capabilities;
  fw.clock_scale = options.clock_scale;
  fw.state_file = options.state_file;
  if (options.state_file && std::filesystem::exists(*options.state_file)) {
    Chip chip = Chip::load(*options.state_file, calibration ? &*calibration : nullptr);
    fw.serial = simulated_board_serial(chip.model().calibration().identity.board_serial,
                                       chip.seed(), options.state_file);
    return std::make_unique<BoardFirmware>(std::move(chip), std::move(fw));
  }
  Chip chip(devices::DeviceModel(calibration ? *calibration : devices::Calibration::defaults()),
            options.seed);
  fw.serial = simulated_board_serial(chip.model().calibration().identity.board_serial, options.seed,
                                     options.state_file);
  if (options.formed) chip.form_all_at_factory();
  auto firmware = std::make_unique<BoardFirmware>(std::move(chip), std::move(fw));
  firmware->save_state();  // the chip exists from now on, even if the process is killed
  return firmware;
}

namespace {

void log_line(const ServeOptions& options, const std::string& line) {
  if (options.log) options.log(line);
}

// Answers every request of a client that connected while another is served with BUSY
// (detail kServingAnotherHost) for options.refusal_window, each on its own short-lived thread,
// so that the served client never waits for it.
class BusyResponder {
 public:
  explicit BusyResponder(const ServeOptions& options) : options_(options) {}
  ~BusyResponder() {
    for (auto& r : refusals_) {
      r->link->close();
      r->thread.join();
    }
  }
  BusyResponder(const BusyResponder&) = delete;
  BusyResponder& operator=(const BusyResponder&) = delete;

  void refuse(std::unique_ptr<drivers::Transport> link, std::uint32_t boot_id) {
    reap();
    log_line(options_, "refused " + link->address() + ": serving another host");
    if (refusals_.size() >= kMaxRefusals) {
      link->close();  // a flood of connections: no thread each
      return;
    }
    auto r = std::make_unique<Refusal>();
    r->link = std::move(link);
    Refusal* raw = r.get();
    r->thread = std::thread([this, raw, boot_id] {
      answer_busy(*raw->link, boot_id);
      raw->link->close();
      raw->done = true;
    });
    refusals_.push_back(std::move(r));
  }

 private:
  static constexpr std::size_t kMaxRefusals = 8;
  struct Refusal {
    std::unique_ptr<drivers::Transport> link;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void answer_busy(drivers::Transport& link, std::uint32_t boot_id) const {
    protocols::StreamDecoder decoder;
    std::vector<std::uint8_t> buffer(4096);
    const auto deadline = drivers::deadline_after(options_.refusal_window);
    const auto busy = protocols::encode_error_response(
        {protocols::Status::kBusy, boot_id, protocols::busy_detail::kServingAnotherHost});
    for (;;) {
      const auto r = link.read_some(buffer, deadline);
      if (r.bytes == 0) return;  // deadline, or the client went away
      for (const auto& event : decoder.feed(std::span(buffer.data(), r.bytes))) {
        const auto* frame = std::get_if<protocols::Frame>(&event);
        if (frame == nullptr || (frame->header.flags & protocols::frame_flags::kResponse)) continue;
        const auto reply = protocols::encode_response_frame(
            frame->header.sequence, static_cast<protocols::Opcode>(frame->header.opcode), busy);
        if (!link.write(reply, drivers::deadline_after(options_.write_timeout)).ok()) return;
      }
    }
  }

  void reap() {
    std::erase_if(refusals_, [](const std::unique_ptr<Refusal>& r) {
      if (!r->done) return false;
      r->thread.join();
      return true;
    });
  }

  const ServeOptions& options_;
  std::vector<std::unique_ptr<Refusal>> refusals_;
};

struct LinkEnd {
  bool stopped = false;                      // *options.stop was set
  std::unique_ptr<drivers::Transport> next;  // a client that connected as this one left
};

// serve(), and while it runs, every further connection on `listener` (if any) is refused. A
// client that connects just as the served one closes (a host reconnecting, or the next command)
// is not refused: the served client's end of stream is queued before the new connection, so it
// is seen within the next two reads, and the new client is handed back to be served next.
LinkEnd serve_link(drivers::Transport& link, BoardFirmware& firmware, const ServeOptions& options,
                   drivers::TcpListener* listener, BusyResponder* refusals) {
  std::vector<std::uint8_t> buffer(8192);
  auto last_save = std::chrono::steady_clock::now();
  auto last_input = last_save;
  LinkEnd end;
  std::unique_ptr<drivers::Transport> waiting;  // connected while this link is served
  int reads_since_waiting = 0;
  while (true) {
    if (options.stop != nullptr && options.stop->load()) {
      end.stopped = true;
      break;
    }
    if (listener != nullptr) {
      while (auto extra = listener->accept(drivers::deadline_after(std::chrono::milliseconds(0)))) {
        if (waiting) refusals->refuse(std::move(waiting), firmware.boot_id());
        waiting = std::move(extra);
        reads_since_waiting = 0;
      }
    }
    const auto result = link.read_some(buffer, drivers::deadline_after(options.poll_interval));
    const auto now = std::chrono::steady_clock::now();
    if (result.bytes > 0) {
      last_input = now;
      const auto reply =
          firmware.handle_bytes(std::span<const std::uint8_t>(buffer.data(), result.bytes));
      const auto hold = std::chrono::nanoseconds(firmware.take_reply_time_ns());
      if (options.realistic_link && !reply.empty()) {
        std::this_thread::sleep_until(now +
                                      std::min<std::chrono::nanoseconds>(hold, kMaxReplyHold));
      }
      if (!reply.empty()) {
        const auto written = link.write(reply, drivers::deadline_after(options.write_timeout));
        if (written.closed()) break;
      }
    }
    if (result.closed()) break;
    if (waiting && ++reads_since_waiting >= 2) {
      refusals->refuse(std::move(waiting), firmware.boot_id());
    }
    if (options.idle_timeout.count() > 0 && now - last_input >= options.idle_timeout) {
      log_line(options, "dropped " + link.address() + ": no request for " +
                            std::to_string(options.idle_timeout.count()) + " ms");
      break;
    }
    if (options.reboot_request != nullptr && options.reboot_request->exchange(false)) {
      firmware.power_cycle();
    }
    firmware.poll();
    if (now - last_save >= options.save_interval) {
      firmware.save_state_if_dirty();
      last_save = now;
    }
  }
  firmware.save_state_if_dirty();
  end.next = std::move(waiting);
  return end;
}

}  // namespace

bool serve(drivers::Transport& link, BoardFirmware& firmware, const ServeOptions& options) {
  return serve_link(link, firmware, options, nullptr, nullptr).stopped;
}

void serve_tcp(drivers::TcpListener& listener, BoardFirmware& firmware,
               const ServeOptions& options) {
  BusyResponder refusals(options);
  std::unique_ptr<drivers::Transport> connection;
  while (options.stop == nullptr || !options.stop->load()) {
    if (!connection) {
      connection = listener.accept(drivers::deadline_after(options.poll_interval * 10));
    }
    if (!connection) {
      firmware.poll();
      firmware.save_state_if_dirty();
      continue;
    }
    log_line(options, "serving " + connection->address());
    auto end = serve_link(*connection, firmware, options, &listener, &refusals);
    connection->close();
    connection = std::move(end.next);
    if (end.stopped) break;
  }
  firmware.save_state_if_dirty();
}

namespace {

// The host's end of the pipe, owning the board thread.
class InProcessTransport final : public drivers::Transport {
 public:
  InProcessTransport(std::string address, std::unique_ptr<BoardFirmware> firmware)
      : Transport(std::move(address)), firmware_(std::move(firmware)) {
    auto pair = drivers::make_pipe_pair("sim");
    host_end_ = std::move(pair.first);
    board_end_ = std::move(pair.second);
    board_thread_ = std::thread([this] {
      try {
        serve(*board_end_, *firmware_, {});
      } catch (const std::exception&) {
        // A state file that cannot be written: the host sees the link close.
      }
      board_end_->close();
    });
  }
  ~InProcessTransport() override {
    close();
    if (board_thread_.joinable()) board_thread_.join();
  }

 protected:
  drivers::IoResult do_write(std::span<const std::uint8_t> bytes,
                             drivers::Deadline deadline) override {
    return host_end_->write(bytes, deadline);
  }
  drivers::IoResult do_read(std::span<std::uint8_t> buffer, drivers::Deadline deadline) override {
    return host_end_->read_some(buffer, deadline);
  }
  void do_flush() override { host_end_->flush_input(); }
  void do_close() override {
    host_end_->close();
    if (board_thread_.joinable() && board_thread_.get_id() != std::this_thread::get_id()) {
      board_thread_.join();
    }
  }
  void do_interrupt() override { host_end_->close(); }

 private:
  std::unique_ptr<BoardFirmware> firmware_;
  std::unique_ptr<drivers::Transport> host_end_;
  std::unique_ptr<drivers::Transport> board_end_;
  std::thread board_thread_;
};

}  // namespace

std::unique_ptr<drivers::Transport> make_in_process_transport(
    std::unique_ptr<BoardFirmware> firmware, std::string address) {
  return std::make_unique<InProcessTransport>(std::move(address), std::move(firmware));
}

std::unique_ptr<drivers::Transport> make_in_process_transport(const SimOptions& options,
                                                              std::string address) {
  return make_in_process_transport(make_firmware(options), std::move(address));
}

void register_transport_scheme() {
  static std::once_flag once;
  std::call_once(once, [] {
    drivers::register_transport_scheme(
        "sim",
        [](const drivers::Address& address) -> std::unique_ptr<drivers::Transport> {
          return make_in_process_transport(parse_sim_options(address), address.text);
        },
        "sim:?seed=1", [](const drivers::Address& address) { parse_sim_options(address); });
  });
}

}  // namespace metaplast::sim
