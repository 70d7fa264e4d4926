#include "app/learning/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <type_traits>

namespace metaplast::learning {

namespace {

constexpr char kMagic[8] = {'M', 'P', 'L', 'C', 'K', 'P', 'T', '\0'};
constexpr std::size_t kHeaderBytes = 8 + 4 + 8 + 8 + 8;

class Writer {
 public:
  template <typename T>
  void pod(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const char*>(&value);
    bytes_.append(p, sizeof(T));
  }
  void size(std::size_t n) { pod(static_cast<std::uint64_t>(n)); }
  void floats(const std::vector<float>& v) {
    size(v.size());
    bytes_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  }
  void text(std::string_view s) {
    size(s.size());
    bytes_.append(s);
  }
  void batchnorm(const std::vector<BatchNormState>& layers) {
    size(layers.size());
    for (const auto& s : layers) {
      floats(s.gamma);
      floats(s.beta);
      floats(s.running_mean);
      floats(s.running_var);
    }
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class Reader {
 public:
  Reader(std::string_view bytes, const std::filesystem::path& file) : bytes_(bytes), file_(file) {}
  template <typename T>
  T pod() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  std::size_t size() {
    const auto n = pod<std::uint64_t>();
    if (n > bytes_.size()) fail("implausible length " + std::to_string(n));
    return static_cast<std::size_t>(n);
  }
  std::vector<float> floats() {
    const std::size_t n = size();
    need(n * sizeof(float));
    std::vector<float> v(n);
    std::memcpy(v.data(), bytes_.data() + at_, n * sizeof(float));
    at_ += n * sizeof(float);
    return v;
  }
  std::string text() {
    const std::size_t n = size();
    need(n);
    std::string s(bytes_.substr(at_, n));
    at_ += n;
    return s;
  }
  std::vector<BatchNormState> batchnorm() {
    std::vector<BatchNormState> layers(size());
    for (auto& s : layers) {
      s.gamma = floats();
      s.beta = floats();
      s.running_mean = floats();
      s.running_var = floats();
    }
    return layers;
  }
  void expect_end() const {
    if (at_ != bytes_.size()) fail("trailing bytes after the state");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("checkpoint " + file_.string() + " is corrupt: " + what +
                             "; delete it to start over");
  }

 private:
  void need(std::size_t n) const {
    if (bytes_.size() - at_ < n) fail("truncated payload");
  }
  std::string_view bytes_;
  std::filesystem::path file_;
  std::size_t at_ = 0;
};

[[noreturn]] void io_error(const std::string& what, const std::filesystem::path& file) {
  throw std::runtime_error("checkpoint: cannot " + what + " " + file.string() + ": " +
                           std::strerror(errno));
}

void write_all(int fd, const char* data, std::size_t n, const std::filesystem::path& file) {
  while (n > 0) {
    const ssize_t written = ::write(fd, data, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      io_error("write", file);
    }
    data += written;
    n -= static_cast<std::size_t>(written);
  }
}

}  // namespace

std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void save_checkpoint(const std::filesystem::path& file, std::uint64_t config_hash,
                     const TrainingState& state) {
  Writer w;
  w.size(state.task_index);
  w.size(state.epochs_done);
  w.text(state.rng_state);
  w.pod(state.train_seconds);
  w.pod(state.samples_trained);
  w.size(state.hidden_weights.size());
  for (const auto& layer : state.hidden_weights) w.floats(layer);
  w.pod(state.optimizer_steps);
  w.size(state.optimizer_moments.size());
  for (const auto& m : state.optimizer_moments) {
    w.floats(m.first);
    w.floats(m.second);
  }
  w.batchnorm(state.live_batchnorm);
  w.size(state.saved_batchnorm.size());
  for (const auto& saved : state.saved_batchnorm) {
    w.pod(static_cast<std::uint8_t>(saved.has_value()));
    if (saved) w.batchnorm(*saved);
  }
  w.size(state.metrics.size());
  for (const auto& row : state.metrics) {
    w.text(row.task_trained);
    w.pod(static_cast<std::int32_t>(row.epoch));
    w.text(row.task_evaluated);
    w.text(row.split);
    w.pod(row.accuracy);
    w.pod(row.loss);
  }
  w.text(state.store_state);
  const std::string& payload = w.bytes();

  Writer header;
  for (char c : kMagic) header.pod(c);
  header.pod(kCheckpointFormatVersion);
  header.pod(config_hash);
  header.pod(static_cast<std::uint64_t>(payload.size()));
  header.pod(fnv1a64(payload));

  std::filesystem::path temporary = file;
  temporary += ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error("create", temporary);
  write_all(fd, header.bytes().data(), header.bytes().size(), temporary);
  write_all(fd, payload.data(), payload.size(), temporary);
  if (::fsync(fd) != 0) {
    ::close(fd);
    io_error("fsync", temporary);
  }
  if (::close(fd) != 0) io_error("close", temporary);
  if (::rename(temporary.c_str(), file.c_str()) != 0) io_error("rename into place", file);
  // The rename is durable only once the directory entry is.
  const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) io_error("open directory", dir);
  const int synced = ::fsync(dir_fd);
  ::close(dir_fd);
  if (synced != 0) io_error("fsync directory", dir);
}

TrainingState load_checkpoint(const std::filesystem::path& file,
                              std::uint64_t expected_config_hash) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::runtime_error("checkpoint " + file.string() +
                             " is missing or unreadable: the run stopped before its first epoch "
                             "ended; remove its directory and start the run again");
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Reader header(bytes, file);
  if (bytes.size() < kHeaderBytes) header.fail("truncated header");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    header.fail("not a metaplast checkpoint (bad magic)");
  }
  for (std::size_t i = 0; i < sizeof(kMagic); ++i) header.pod<char>();
  const auto version = header.pod<std::uint32_t>();
  if (version != kCheckpointFormatVersion && version != 1) {
    throw std::runtime_error("checkpoint " + file.string() + " has format version " +
                             std::to_string(version) + ", this metaplast reads version " +
                             std::to_string(kCheckpointFormatVersion));
  }
  const auto config_hash = header.pod<std::uint64_t>();
  const auto payload_size = header.pod<std::uint64_t>();
  const auto payload_hash = header.pod<std::uint64_t>();
  if (bytes.size() - kHeaderBytes != payload_size) {
    header.fail("truncated: expected " + std::to_string(payload_size) + " payload bytes, found " +
                std::to_string(bytes.size() - kHeaderBytes));
  }
  const std::string_view payload = std::string_view(bytes).substr(kHeaderBytes);
  if (fnv1a64(payload) != payload_hash) header.fail("payload hash mismatch");
  if (config_hash != expected_config_hash) {
    throw std::runtime_error("checkpoint " + file.string() +
                             " was written for another configuration or other dataset files than "
                             "those of the config.json next to it (or --data); start a new run "
                             "instead of resuming");
  }

  Reader r(payload, file);
  TrainingState s;
  s.task_index = r.size();
  s.epochs_done = r.size();
  s.rng_state = r.text();
  s.train_seconds = r.pod<double>();
  s.samples_trained = r.pod<std::uint64_t>();
  s.hidden_weights.resize(r.size());
  for (auto& layer : s.hidden_weights) layer = r.floats();
  s.optimizer_steps = r.pod<std::int64_t>();
  s.optimizer_moments.resize(r.size());
  for (auto& m : s.optimizer_moments) {
    m.first = r.floats();
    m.second = r.floats();
  }
  s.live_batchnorm = r.batchnorm();
  s.saved_batchnorm.resize(r.size());
  for (auto& saved : s.saved_batchnorm) {
    if (r.pod<std::uint8_t>() != 0) saved = r.batchnorm();
  }
  s.metrics.resize(r.size());
  for (auto& row : s.metrics) {
    row.task_trained = r.text();
    row.epoch = r.pod<std::int32_t>();
    row.task_evaluated = r.text();
    row.split = r.text();
    row.accuracy = r.pod<double>();
    row.loss = r.pod<double>();
  }
  if (version >= 2) s.store_state = r.text();
  r.expect_end();
  return s;
}

}  // namespace metaplast::learning
