#include "drivers/pipe_transport.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <stdexcept>

namespace metaplast::drivers {

namespace {

// One direction: a bounded byte queue. `writer_closed` / `reader_closed` say which end left.
struct ByteQueue {
  explicit ByteQueue(std::size_t capacity) : capacity(capacity) {}
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::uint8_t> bytes;
  std::size_t capacity;
  bool writer_closed = false;
  bool reader_closed = false;
};

class PipeEnd final : public Transport {
 public:
  PipeEnd(std::string address, std::shared_ptr<ByteQueue> inbound,
          std::shared_ptr<ByteQueue> outbound)
      : Transport(std::move(address)), in_(std::move(inbound)), out_(std::move(outbound)) {}
  ~PipeEnd() override { close(); }

 protected:
  IoResult do_write(std::span<const std::uint8_t> bytes, Deadline deadline) override {
    std::unique_lock lock(out_->mutex);
    const bool woke = out_->changed.wait_until(lock, deadline, [&] {
      return out_->reader_closed || out_->writer_closed || out_->bytes.size() < out_->capacity;
    });
    if (out_->reader_closed || out_->writer_closed) {
      return {IoStatus::closed, 0, "pipe " + address() + ": the other end is closed"};
    }
    if (!woke) return {IoStatus::timeout, 0, "pipe " + address() + ": write timed out (full)"};
    const std::size_t n = std::min(bytes.size(), out_->capacity - out_->bytes.size());
    out_->bytes.insert(out_->bytes.end(), bytes.begin(), bytes.begin() + n);
    out_->changed.notify_all();
    return {IoStatus::ok, n, {}};
  }

  IoResult do_read(std::span<std::uint8_t> buffer, Deadline deadline) override {
    std::unique_lock lock(in_->mutex);
    in_->changed.wait_until(lock, deadline, [&] {
      return !in_->bytes.empty() || in_->writer_closed || in_->reader_closed;
    });
    if (!in_->bytes.empty() && !in_->reader_closed) {
      const std::size_t n = std::min(buffer.size(), in_->bytes.size());
      std::copy_n(in_->bytes.begin(), n, buffer.begin());
      in_->bytes.erase(in_->bytes.begin(), in_->bytes.begin() + static_cast<std::ptrdiff_t>(n));
      in_->changed.notify_all();
      return {IoStatus::ok, n, {}};
    }
    if (in_->reader_closed) return {IoStatus::closed, 0, "pipe " + address() + " is closed"};
    if (in_->writer_closed) {
      return {IoStatus::closed, 0, "pipe " + address() + ": the other end is closed"};
    }
    return {IoStatus::timeout, 0, "pipe " + address() + ": read timed out"};
  }

  void do_flush() override {
    std::lock_guard lock(in_->mutex);
    in_->bytes.clear();
    in_->changed.notify_all();
  }

  void do_interrupt() override {
    // Mark both directions so blocked waits on either queue return closed at once.
    for (const auto& queue : {in_, out_}) {
      std::lock_guard lock(queue->mutex);
      (queue == in_ ? queue->reader_closed : queue->writer_closed) = true;
      queue->changed.notify_all();
    }
  }

  void do_close() override { do_interrupt(); }

 private:
  std::shared_ptr<ByteQueue> in_;
  std::shared_ptr<ByteQueue> out_;
};

}  // namespace

PipePair make_pipe_pair(const std::string& name, std::size_t capacity_bytes) {
  if (capacity_bytes == 0)
    throw std::invalid_argument("make_pipe_pair: capacity_bytes must be >= 1");
  auto a_to_b = std::make_shared<ByteQueue>(capacity_bytes);
  auto b_to_a = std::make_shared<ByteQueue>(capacity_bytes);
  PipePair pair;
  pair.first = std::make_unique<PipeEnd>("pipe:" + name + "/0", b_to_a, a_to_b);
  pair.second = std::make_unique<PipeEnd>("pipe:" + name + "/1", a_to_b, b_to_a);
  return pair;
}

}  // namespace metaplast::drivers
