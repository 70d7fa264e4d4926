// Transport: a bidirectional byte stream with deadlines (serial port, TCP socket, in-process pipe,
// pseudo-terminal master). drivers/ moves bytes only; framing lives in protocols/.
//
// Shape (spdlog-like): the public entry points are non-virtual and do the cross-cutting work
// (locking, deadline checks, closed-state bookkeeping, the observer tap); subclasses override the
// small protected hooks do_write / do_read / do_flush / do_close / do_interrupt.
//
// Promises that hold for every transport:
// - I/O never throws for timeouts or a dropped link: it returns an IoResult whose status says
//   ok / timeout / closed / error. Construction (opening a port, connecting) throws TransportError.
// - Every blocking call ends at its deadline (std::chrono::steady_clock).
// - A dropped link (peer closed the socket or pipe, cable pulled, pty master gone) gives status
//   closed, never a hang; after that is_open() is false and writes return closed at once, while
//   reads first deliver any bytes that arrived before the drop, then return closed.
// - One reader and one writer may run concurrently on different threads (full duplex); calls in
//   the same direction are serialised. close() may be called from any thread: it wakes a blocked
//   read_some/write (which then return closed) and waits for them to leave before releasing the
//   underlying handle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace metaplast::drivers {

using SteadyClock = std::chrono::steady_clock;
// The instant by which a call must return (steady clock, immune to wall-clock changes).
using Deadline = SteadyClock::time_point;

// A deadline `timeout` from now. deadline_after(0ms) means "poll: only what is already there".
inline Deadline deadline_after(std::chrono::milliseconds timeout) {
  return SteadyClock::now() + timeout;
}

enum class IoStatus {
  ok,       // the call did what it promised (see bytes)
  timeout,  // the deadline passed first; bytes may still be > 0 (partial transfer)
  closed,   // the link is gone: peer closed, cable pulled, or close() was called
  error,    // an unexpected OS/library error (message says which); the link may still be usable
};

const char* to_string(IoStatus status);

struct IoResult {
  IoStatus status = IoStatus::ok;
  std::size_t bytes = 0;  // bytes written or read by this call, whatever the status
  std::string message;    // empty when ok; otherwise what happened, for logs and error reports

  bool ok() const { return status == IoStatus::ok; }
  bool timed_out() const { return status == IoStatus::timeout; }
  bool closed() const { return status == IoStatus::closed; }
};

// Thrown when a transport cannot be opened or connected (bad port, refused connection, ...).
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// When a byte moved: steady time for intervals, system time for the record's wall clock.
struct IoTimestamp {
  SteadyClock::time_point steady;
  std::chrono::system_clock::time_point system;
  static IoTimestamp now() { return {SteadyClock::now(), std::chrono::system_clock::now()}; }
};

// A tap on every byte both ways (used by the session recorder). Called after the bytes moved
// (write: once handed to the OS; read: once received), only with non-empty spans, from the
// thread that did the I/O while that direction's lock is held. on_write and on_read may run
// concurrently on two threads, so an observer must be thread-safe. Must not call back into the
// same transport. Exceptions thrown by an observer propagate to the I/O caller.
class TransportObserver {
 public:
  virtual ~TransportObserver() = default;
  virtual void on_write(std::span<const std::uint8_t> bytes, const IoTimestamp& when) = 0;
  virtual void on_read(std::span<const std::uint8_t> bytes, const IoTimestamp& when) = 0;
  virtual void on_close(const IoTimestamp& /*when*/) {}
};

class Transport {
 public:
  virtual ~Transport();  // subclasses call close() in their own destructors
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Writes all of `bytes` unless the deadline passes or the link drops first. ok means
  // bytes == bytes.size(); on timeout/closed/error, bytes says how many went out.
  IoResult write(std::span<const std::uint8_t> bytes, Deadline deadline);

  // Returns as soon as at least one byte is available (ok, bytes >= 1, at most buffer.size()),
  // or at the deadline (timeout, bytes == 0). An empty buffer returns ok with 0 bytes.
  IoResult read_some(std::span<std::uint8_t> buffer, Deadline deadline);

  // Convenience: loops read_some until the buffer is full (ok) or the deadline passes (timeout,
  // bytes = how much of the buffer was filled) or the link drops (closed).
  IoResult read_exact(std::span<std::uint8_t> buffer, Deadline deadline);

  // Discards input that has arrived but not been read (e.g. garbage before a resync, stale
  // replies after a timeout). Does not block. No effect on a closed transport.
  void flush_input();

  // Closes the link (idempotent, never throws). Wakes blocked calls on other threads.
  void close();

  // False after close() or after a dropped link was detected.
  bool is_open() const { return open_.load(); }

  // The address this transport was made from, e.g. "tcp:127.0.0.1:5025" (for logs and records).
  const std::string& address() const { return address_; }

  // Installs (or with nullptr removes) the byte tap. Thread-safe; takes effect on the next call.
  void set_observer(std::shared_ptr<TransportObserver> observer);

 protected:
  explicit Transport(std::string address);

  // Hooks. Called with that direction's lock held, never after close() started; do_read may be
  // called after do_write reported closed (to drain what the peer sent before it went away).
  // do_write: write as much as possible of `bytes` before the deadline (may return after a partial
  //   write with status ok; the base class loops until everything is written or the deadline).
  // do_read: wait until >= 1 byte or the deadline; closed when the peer is gone AND nothing is
  //   buffered.
  // do_flush: discard pending input; called with the read lock held.
  // do_close: release the handle; called once, with both locks held.
  // do_interrupt: called without locks from close() before it takes them, from any thread; must
  //   make a blocked do_read/do_write return soon (e.g. signal an eventfd). Default: nothing.
  virtual IoResult do_write(std::span<const std::uint8_t> bytes, Deadline deadline) = 0;
  virtual IoResult do_read(std::span<std::uint8_t> buffer, Deadline deadline) = 0;
  virtual void do_flush() = 0;
  virtual void do_close() = 0;
  virtual void do_interrupt() {}

  // True once close() started: hooks may check it to stop waiting.
  bool closing() const { return closing_.load(); }

 private:
  std::shared_ptr<TransportObserver> current_observer() const;
  void mark_link_down();

  std::string address_;
  std::atomic<bool> open_{true};           // false after close() or a detected drop
  std::atomic<bool> closing_{false};       // close() started
  std::atomic<bool> read_drained_{false};  // do_read reported closed: nothing more to read
  std::mutex write_mutex_;
  std::mutex read_mutex_;
  std::mutex close_mutex_;
  bool closed_done_ = false;  // guarded by close_mutex_
  mutable std::mutex observer_mutex_;
  std::shared_ptr<TransportObserver> observer_;
};

}  // namespace metaplast::drivers
