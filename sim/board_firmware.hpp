// The simulated board's firmware: parses request frames with protocols/ (the decoder the host
// uses), enforces the board's limits and executes docs/protocol.md on a simulated Chip, byte for
// byte: status codes, raw ADC codes, counters, the reply cache, batches, boot ids and the
// watchdog. Fault switches (drop / corrupt / delay frames, reboot, stuck cells, dead link) sit
// between the bytes and the firmware, with their own random stream so they never change the
// physics' draws.
//
// Device time: a simulated clock advanced by an operation-timing model (pulses, settling, ADC
// conversions, and the link bytes of the request and reply at the configured baud rate). Only
// requests that operate on the array (FORM, SET, RESET, READ, PROGRAM_VERIFY) advance it; retries
// answered from the reply cache, rejected frames and housekeeping requests do not, so link faults
// and host retries do not change device results (e.g. relaxation). The host sees it as
// GET_STATUS uptime_ms; dry runs can read device_time_ns().
// An accelerated clock (FirmwareOptions::clock_scale, off by default) also advances it with the
// wall-clock time between requests times a scale, so retention over hours of device time runs in
// seconds (docs/calibration.md, "Device time").
//
// Not thread-safe: one thread feeds a firmware (serve() in sim/server.hpp does that).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/board_timing.hpp"
#include "devices/random.hpp"
#include "protocols/board_messages.hpp"
#include "protocols/frame.hpp"
#include "sim/chip.hpp"

namespace metaplast::sim {

// Fault switches. Rates are per frame, in each direction independently, drawn from a separate
// stream seeded by `seed`.
struct FaultOptions {
  std::uint64_t seed = 1;
  double drop_rate = 0.0;     // frame lost (request never seen / reply never sent)
  double corrupt_rate = 0.0;  // one random bit of the frame flipped
  double delay_rate = 0.0;    // reply held back by delay_ms of wall-clock time
  std::uint32_t delay_ms = 0;
  // Reboot when the N-th request frame (1-based, counting frames that reached the firmware)
  // arrives: a mutating request is executed for the first half of its cells, then the board
  // resets without replying (boot id changes, cells and counters persist).
  std::vector<std::uint64_t> reboot_at_frames;
  std::vector<int> stuck_cells;         // cell indices made stuck at start-up
  std::uint64_t dead_after_frames = 0;  // 0 = never: after N request frames, answer nothing

  bool any_link_fault() const { return drop_rate > 0 || corrupt_rate > 0 || delay_rate > 0; }
};

struct FirmwareOptions {
  devices::TimingModel timing;
  FaultOptions faults;
  // Non-volatile storage: when set, the chip is saved here after a completed batch (at most once
  // per min_save_interval of wall-clock time; later changes wait for save_state_if_dirty(), which
  // serve() calls every 2 s and on exit), at a reboot and by save_state(). Atomic writes.
  std::optional<std::filesystem::path> state_file;
  std::chrono::milliseconds min_save_interval{250};
  // Capability bits advertised and honoured (protocols::capability::*); clear kProgramVerify to
  // look like firmware without the opcode (the host then runs its own loop).
  std::uint32_t capabilities = 0x7F;
  // Wall clock for the watchdog (injectable so tests can run the watchdog without sleeping).
  std::function<std::chrono::steady_clock::time_point()> clock;
  // Device time also advances with the wall-clock time (`clock`) between request frames times
  // this scale (3600: an hour of device time per second); 0: only operations advance it (the
  // default: a seeded result does not depend on how fast the host is).
  double clock_scale = 0.0;
  std::string firmware_version = "sim-1.0";
  // The serial the board reports in IDENTIFY ("" = the calibration's board_serial). make_firmware
  // gives each chip its own (simulated_board_serial), so chip records are never shared.
  std::string serial;
};

struct FirmwareStats {
  std::uint64_t request_frames = 0;  // frames that reached the firmware (after drop faults)
  std::uint64_t executed = 0;        // requests executed (not from cache, not refused early)
  std::uint64_t cached_replies = 0;  // retries answered from the reply cache
  std::uint64_t crc_errors = 0;      // bad_crc answers
  std::uint64_t garbage_bytes = 0;
  std::uint64_t dropped_requests = 0, dropped_replies = 0;
  std::uint64_t corrupted_requests = 0, corrupted_replies = 0;
  std::uint64_t delayed_replies = 0;
  std::uint64_t reboots = 0;  // resets since this firmware object started
  std::uint64_t watchdog_trips = 0;
};

class BoardFirmware {
 public:
  // Powers the board up on `chip` (counts a boot: new boot id). Applies the stuck-cell faults.
  // Throws std::invalid_argument if the chip's calibration has more than 15 HCS levels.
  explicit BoardFirmware(Chip chip, FirmwareOptions options = {});

  // Feeds bytes received from the host; returns the bytes the board sends back (possibly none).
  // Never throws on any input.
  std::vector<std::uint8_t> handle_bytes(std::span<const std::uint8_t> bytes);

  // Checks the watchdog against the wall clock (also done at every request). Call it
  // periodically when no bytes arrive.
  void poll();

  // A reset now (power cycle): new boot id; reply cache, batch table, configuration and
  // watchdog are lost; cells and counters persist; state saved if a state file is set.
  void power_cycle();

  // Dead-link switch: while dead, all input is ignored and nothing is sent.
  void set_link_dead(bool dead) { link_dead_ = dead; }
  bool link_dead() const { return link_dead_; }
  // Fault switches may be changed between calls.
  FaultOptions& faults() { return options_.faults; }

  // Writes the chip to the state file (no-op without one). Throws StateFileError.
  void save_state();
  // Saves only if something changed since the last save. Returns whether it wrote.
  bool save_state_if_dirty();

  Chip& chip() { return chip_; }
  const Chip& chip() const { return chip_; }
  std::uint32_t boot_id() const { return boot_id_; }
  std::int64_t device_time_ns() const { return chip_.time_ns(); }
  // The time the replies sent since the last call took on a real board, then reset to 0: per
  // reply, the device time its request consumed (operations, command overhead and the link
  // bytes of both frames, as the device clock counts them) or, for a request that operates on
  // nothing (housekeeping, READ_COUNTERS, a cached or refused one), the link time of both frames
  // at the timing model's baud. The realistic-link mode of the server holds replies this long
  // (ServeOptions::realistic_link).
  std::int64_t take_reply_time_ns();
  const FirmwareStats& stats() const { return stats_; }
  const protocols::Configuration& configuration() const { return config_; }
  // The IDENTIFY body this board answers (boot id current).
  protocols::IdentifyResponse identity() const;
  // The board's default configuration after boot.
  static protocols::Configuration default_configuration(const devices::Calibration& calibration);

  // The board's ADC: raw code for a conductance at the current configuration, and back (as the
  // verify loop and the host compute it: (code - zero) * nanoamps_per_code / read_voltage_mv).
  std::uint16_t conductance_to_code(double conductance_us) const;
  double code_to_conductance_us(std::uint16_t code) const;

 private:
  struct CachedReply {
    std::uint16_t sequence = 0;
    std::uint8_t opcode = 0;
    std::uint16_t length = 0;
    std::uint32_t frame_crc = 0;
    std::vector<std::uint8_t> reply;
  };
  struct BatchRecord {
    std::uint32_t id = 0;
    std::uint32_t done = 0;
    std::uint32_t total = 0;
  };
  struct Reply {
    std::vector<std::uint8_t> payload;
    bool more_fragments = false;
    bool cacheable = true;
  };
  struct RebootNow {};  // thrown inside an execution to model a reset mid-request

  void boot();
  void on_frame(const protocols::Frame& frame, std::vector<std::uint8_t>& out);
  void on_crc_error(const protocols::FrameHeader& header, std::vector<std::uint8_t>& out);
  void send(std::vector<std::uint8_t> frame_bytes, std::vector<std::uint8_t>& out);
  Reply dispatch(const protocols::Frame& frame);
  Reply error(protocols::Status status, std::uint32_t detail = 0) const;
  protocols::ResponseStatus ok() const;

  Reply do_configure(std::span<const std::uint8_t> payload);
  Reply do_set_levels(std::span<const std::uint8_t> payload);
  Reply do_form(std::span<const std::uint8_t> payload);
  Reply do_set(std::span<const std::uint8_t> payload);
  Reply do_reset(std::span<const std::uint8_t> payload);
  Reply do_read(std::span<const std::uint8_t> payload);
  Reply do_program_verify(std::span<const std::uint8_t> payload);
  Reply do_read_counters(std::span<const std::uint8_t> payload);
  Reply do_batch_status(std::span<const std::uint8_t> payload);
  Reply do_watchdog_arm(std::span<const std::uint8_t> payload);

  std::optional<Reply> check_selection(const protocols::Selection& selection) const;
  // The page a READ or READ_COUNTERS request asks for: `count` items from its offset, at most
  // `per_response`; or the refusal of a bad selection or offset. Counts the request as executed.
  template <class PagedRequest>
  std::optional<Reply> take_page(const PagedRequest& req, std::size_t per_response,
                                 std::size_t& count);
  std::optional<Reply> check_boot_id(std::uint32_t expected_boot_id) const;
  std::optional<Reply> check_batch(const protocols::BatchHeader& batch, std::size_t chunk) const;
  std::optional<Reply> check_formed(const protocols::Selection& selection) const;
  // The guards every pulsing request passes first, in this order: boot id, watchdog, selection.
  std::optional<Reply> check_pulse_request(std::uint32_t expected_boot_id,
                                           const protocols::Selection& selection) const;
  // FORM, SET and RESET once their own arguments are checked: the batch (and, for SET and RESET,
  // formed cells) checks, then pulse(cell) over the selection with crash points, the chunk's
  // completion and the reply. pulse(cell) applies one pulse and returns its width in ns
  // (nullopt: no pulse, nothing to time).
  Reply pulse_cells(const protocols::BatchHeader& batch, const protocols::Selection& selection,
                    bool formed_cells_only,
                    const std::function<std::optional<double>(int cell)>& pulse);
  void complete_chunk(const protocols::BatchHeader& batch, std::size_t chunk);
  void crash_point(std::size_t cells_done, std::size_t cells_total);

  std::uint16_t read_cell(int cell);
  void pulse_time(double width_ns);
  std::uint16_t level_gate_mv(std::uint8_t level) const;

  Chip chip_;
  FirmwareOptions options_;
  protocols::StreamDecoder decoder_;
  devices::RandomStream fault_rng_;
  FirmwareStats stats_;
  std::vector<protocols::TiaRange> tia_ranges_;
  std::vector<protocols::LevelEntry> board_levels_;  // the table the board boots with
  protocols::BoardLimits limits_;

  // RAM state, lost at a reset.
  std::uint32_t boot_id_ = 0;
  std::int64_t boot_time_ns_ = 0;
  std::vector<protocols::LevelEntry> levels_;  // in force: board_levels_ until SET_LEVELS
  // The accelerated clock: wall-clock time already turned into device time (clock_scale > 0).
  std::chrono::steady_clock::time_point clock_synced_{};
  void advance_with_wall_clock();
  protocols::Configuration config_;
  bool configured_ = false;
  std::optional<CachedReply> cache_;
  std::vector<BatchRecord> batches_;  // most recent last
  std::uint32_t watchdog_timeout_ms_ = 0;
  bool watchdog_tripped_ = false;
  std::chrono::steady_clock::time_point watchdog_last_kick_{};

  bool link_dead_ = false;
  bool dirty_ = false;
  std::optional<std::chrono::steady_clock::time_point> last_save_;
  bool crash_armed_ = false;        // the current request is the reboot_at frame
  std::size_t frame_bytes_in_ = 0;  // bytes of the request being executed (link time)
  std::int64_t reply_time_ns_ = 0;  // take_reply_time_ns()
};

}  // namespace metaplast::sim
