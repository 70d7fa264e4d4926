#include "drivers/transport.hpp"

#include <utility>

#include "common/enum_names.hpp"

namespace metaplast::drivers {

namespace {
constexpr auto kIoStatusNames = common::enum_table<IoStatus>({{IoStatus::ok, "ok"},
                                                              {IoStatus::timeout, "timeout"},
                                                              {IoStatus::closed, "closed"},
                                                              {IoStatus::error, "error"}});
}  // namespace

const char* to_string(IoStatus status) {
  return common::enum_name(kIoStatusNames, status, "unknown");
}

Transport::Transport(std::string address) : address_(std::move(address)) {}

Transport::~Transport() = default;

std::shared_ptr<TransportObserver> Transport::current_observer() const {
  std::lock_guard lock(observer_mutex_);
  return observer_;
}

void Transport::set_observer(std::shared_ptr<TransportObserver> observer) {
  std::lock_guard lock(observer_mutex_);
  observer_ = std::move(observer);
}

void Transport::mark_link_down() { open_.store(false); }

static IoResult closed_result(const std::string& address, std::size_t bytes = 0) {
  return {IoStatus::closed, bytes, "transport " + address + " is closed"};
}

IoResult Transport::write(std::span<const std::uint8_t> bytes, Deadline deadline) {
  std::lock_guard lock(write_mutex_);
  if (!open_.load()) return closed_result(address_);
  const auto observer = current_observer();
  std::size_t written = 0;
  while (written < bytes.size()) {
    IoResult part = do_write(bytes.subspan(written), deadline);
    if (part.bytes > 0 && observer) {
      observer->on_write(bytes.subspan(written, part.bytes), IoTimestamp::now());
    }
    written += part.bytes;
    if (part.status == IoStatus::closed) mark_link_down();
    if (part.status != IoStatus::ok) {
      part.bytes = written;
      return part;
    }
    if (written < bytes.size() && SteadyClock::now() >= deadline) {
      return {IoStatus::timeout, written,
              "write to " + address_ + " timed out after " + std::to_string(written) + " of " +
                  std::to_string(bytes.size()) + " bytes"};
    }
  }
  return {IoStatus::ok, written, {}};
}

IoResult Transport::read_some(std::span<std::uint8_t> buffer, Deadline deadline) {
  std::lock_guard lock(read_mutex_);
  // After a drop seen by write(), keep reading: the peer's last bytes may still be buffered.
  if (closing_.load() || read_drained_.load()) return closed_result(address_);
  if (buffer.empty()) return {IoStatus::ok, 0, {}};
  IoResult result = do_read(buffer, deadline);
  if (result.bytes > 0) {
    if (const auto observer = current_observer()) {
      observer->on_read(buffer.first(result.bytes), IoTimestamp::now());
    }
  }
  if (result.status == IoStatus::closed) {
    read_drained_.store(true);
    mark_link_down();
  }
  return result;
}

IoResult Transport::read_exact(std::span<std::uint8_t> buffer, Deadline deadline) {
  std::size_t filled = 0;
  while (filled < buffer.size()) {
    IoResult part = read_some(buffer.subspan(filled), deadline);
    filled += part.bytes;
    if (part.status != IoStatus::ok) {
      part.bytes = filled;
      return part;
    }
  }
  return {IoStatus::ok, filled, {}};
}

void Transport::flush_input() {
  std::lock_guard lock(read_mutex_);
  if (closing_.load() || read_drained_.load()) return;
  do_flush();
}

void Transport::close() {
  std::lock_guard close_lock(close_mutex_);
  if (closed_done_) return;
  closing_.store(true);
  open_.store(false);
  do_interrupt();  // wake blocked calls so the locks below are released promptly
  {
    std::scoped_lock io_locks(write_mutex_, read_mutex_);
    do_close();
  }
  closed_done_ = true;
  if (const auto observer = current_observer()) observer->on_close(IoTimestamp::now());
}

}  // namespace metaplast::drivers
