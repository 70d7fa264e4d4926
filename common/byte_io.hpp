// The one writer and the one reader of the product's binary files (checkpoint.bin, the weight
// stores' state inside it, the simulated chip's state file). Values are copied byte for byte as
// the host holds them (memcpy); a format that promises an endianness checks the host once
// (sim/chip.cpp). Every format keeps its own errors: the reader hands each failure to a function
// the caller supplies, which throws the format's exception with the format's message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace metaplast::common {

// Appends values to a byte string.
class ByteWriter {
 public:
  // The bytes of `value` as the host holds it.
  template <class T>
  void pod(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    raw(&value, sizeof(T));
  }
  // The bytes of every element, one after the other, without a count (a format writes its own
  // count, of its own width, before).
  template <std::ranges::contiguous_range Range>
  void pods(const Range& values) {
    using T = std::ranges::range_value_t<Range>;
    static_assert(std::is_trivially_copyable_v<T>);
    raw(std::ranges::data(values), std::ranges::size(values) * sizeof(T));
  }
  void raw(std::string_view bytes) { raw(bytes.data(), bytes.size()); }
  // `data` may be null when `size` is 0 (an empty vector's data()).
  void raw(const void* data, std::size_t size) {
    if (size > 0) bytes_.append(static_cast<const char*>(data), size);
  }
  void reserve(std::size_t size) { bytes_.reserve(size); }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// Why a read failed, for the format's own message.
struct ByteReadError {
  enum class Kind {
    truncated,        // fewer bytes left than the read needs
    count_too_large,  // ByteReader::count: more elements than the bytes left can hold
  };
  Kind kind;
  std::size_t offset;  // where the failing read began (count_too_large: the count's first byte)
  std::uint64_t count = 0;  // count_too_large: the count read
};

// Reads values from a byte string it does not own (`bytes` must outlive the reader). Every
// failure goes to `on_error`, which must throw; nothing is read past the end, and a count is
// checked against the bytes left before anything is allocated for it.
class ByteReader {
 public:
  using OnError = std::function<void(const ByteReadError&)>;
  ByteReader(std::string_view bytes, OnError on_error)
      : bytes_(bytes), on_error_(std::move(on_error)) {}

  template <class T>
  T pod() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, take(sizeof(T)).data(), sizeof(T));
    return value;
  }
  // `n` elements of T, each as the host holds it.
  template <class T>
  std::vector<T> pods(std::size_t n) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (n > remaining() / sizeof(T)) report({ByteReadError::Kind::truncated, offset_});
    const std::string_view bytes = take(n * sizeof(T));
    std::vector<T> values(n);
    // An empty vector's data() may be null, which memcpy must not get even for 0 bytes.
    if (n > 0) std::memcpy(values.data(), bytes.data(), bytes.size());
    return values;
  }
  // The next `n` bytes, a view into the reader's bytes.
  std::string_view raw(std::size_t n) { return take(n); }
  // An element count stored as a `Count` (an unsigned integer). A count larger than the bytes
  // left after it can hold at `min_bytes_each` (>= 1) bytes per element is refused
  // (count_too_large), so a corrupt count fails here instead of allocating gigabytes.
  template <class Count = std::uint64_t>
  std::size_t count(std::size_t min_bytes_each = 1) {
    static_assert(std::is_unsigned_v<Count>);
    const std::size_t at = offset_;
    const Count n = pod<Count>();
    if (n > remaining() / (min_bytes_each > 0 ? min_bytes_each : 1)) {
      report({ByteReadError::Kind::count_too_large, at, n});
    }
    return static_cast<std::size_t>(n);
  }

  std::size_t offset() const { return offset_; }
  std::size_t remaining() const { return bytes_.size() - offset_; }
  bool at_end() const { return offset_ == bytes_.size(); }

 private:
  std::string_view take(std::size_t n) {
    if (remaining() < n) report({ByteReadError::Kind::truncated, offset_});
    const std::string_view taken(bytes_.data() + offset_, n);
    offset_ += n;
    return taken;
  }
  [[noreturn]] void report(const ByteReadError& error) const;

  std::string_view bytes_;
  std::size_t offset_ = 0;
  OnError on_error_;
};

}  // namespace metaplast::common
