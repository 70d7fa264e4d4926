#include "app/learning/checkpoint.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "common/atomic_file.hpp"
#include "common/byte_io.hpp"

namespace metaplast::learning {

namespace {

constexpr char kMagic[8] = {'M', 'P', 'L', 'C', 'K', 'P', 'T', '\0'};
constexpr std::size_t kHeaderBytes = 8 + 4 + 8 + 8 + 8;
// Magic, version, config hash and payload size: what the version 3 checksum covers before the
// payload (versions 1 and 2 cover the payload only).
constexpr std::size_t kCheckedHeaderBytes = 8 + 4 + 8 + 8;
constexpr std::uint64_t kFnvOffsetBasis = 14695981039346656037ull;

// checkpoint.bin's values: a length or count is a std::uint64_t; a float vector and a text are
// their length, then their elements.
class Writer : public common::ByteWriter {
 public:
  void size(std::size_t n) { pod(static_cast<std::uint64_t>(n)); }
  void floats(const std::vector<float>& v) {
    size(v.size());
    pods(v);
  }
  void text(std::string_view s) {
    size(s.size());
    raw(s);
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
};

[[noreturn]] void refuse_corrupt(const std::filesystem::path& file, const std::string& what) {
  throw std::runtime_error("checkpoint " + file.string() + " is corrupt: " + what +
                           "; remove the run's directory and start the run again");
}

class Reader : public common::ByteReader {
 public:
  Reader(std::string_view bytes, const std::filesystem::path& file)
      : ByteReader(bytes,
                   [file](const common::ByteReadError& e) {
                     if (e.kind == common::ByteReadError::Kind::count_too_large) {
                       refuse_corrupt(file, "implausible length " + std::to_string(e.count) +
                                                " at byte " + std::to_string(e.offset));
                     }
                     refuse_corrupt(file, "truncated payload");
                   }),
        file_(file) {}
  // A length or element count; every element takes at least `min_bytes_each` bytes of what is
  // left, so a corrupt count fails here instead of allocating gigabytes.
  std::size_t size(std::size_t min_bytes_each = 1) { return count(min_bytes_each); }
  std::vector<float> floats() { return pods<float>(size(sizeof(float))); }
  std::string text() { return std::string(raw(size())); }
  std::vector<BatchNormState> batchnorm() {
    std::vector<BatchNormState> layers(size(4 * 8));
    for (auto& s : layers) {
      s.gamma = floats();
      s.beta = floats();
      s.running_mean = floats();
      s.running_var = floats();
    }
    return layers;
  }
  void expect_end() const {
    if (!at_end()) fail("trailing bytes after the state");
  }
  [[noreturn]] void fail(const std::string& what) const { refuse_corrupt(file_, what); }

 private:
  std::filesystem::path file_;
};

}  // namespace

std::uint64_t fnv1a64(std::string_view bytes) { return fnv1a64(bytes, kFnvOffsetBasis); }

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t prior) {
  std::uint64_t h = prior;
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
  w.size(state.optimizer_moments.size());
  for (const auto& m : state.optimizer_moments) w.floats(m.consolidation);
  w.size(state.protected_spaces.size());
  for (const ProtectedSpace& space : state.protected_spaces) {
    w.size(space.rank);
    w.floats(space.basis);
    w.floats(space.anchor);
  }
  const std::string& payload = w.bytes();

  Writer header;
  for (char c : kMagic) header.pod(c);
  header.pod(kCheckpointFormatVersion);
  header.pod(config_hash);
  header.pod(static_cast<std::uint64_t>(payload.size()));
  header.pod(fnv1a64(payload, fnv1a64(header.bytes())));
  common::write_file_atomically(file, header.bytes() + payload, common::Durability::power_loss);
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
  if (in.bad()) {
    throw std::runtime_error("checkpoint " + file.string() + ": read error; check the disk");
  }
  return parse_checkpoint(bytes, file, expected_config_hash);
}

TrainingState parse_checkpoint(std::string_view bytes, const std::filesystem::path& file,
                               std::uint64_t expected_config_hash) {
  Reader header(bytes, file);
  if (bytes.size() < kHeaderBytes) header.fail("truncated header");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    header.fail("not a metaplast checkpoint (bad magic)");
  }
  for (std::size_t i = 0; i < sizeof(kMagic); ++i) header.pod<char>();
  const auto version = header.pod<std::uint32_t>();
  if (version < 1 || version > kCheckpointFormatVersion) {
    throw std::runtime_error("checkpoint " + file.string() + " has format version " +
                             std::to_string(version) + ", this metaplast reads versions 1 to " +
                             std::to_string(kCheckpointFormatVersion) +
                             " (a damaged file, or one from a newer metaplast)");
  }
  const auto config_hash = header.pod<std::uint64_t>();
  const auto payload_size = header.pod<std::uint64_t>();
  const auto checksum = header.pod<std::uint64_t>();
  if (bytes.size() - kHeaderBytes != payload_size) {
    header.fail(std::string(bytes.size() - kHeaderBytes < payload_size ? "truncated" : "too long") +
                ": expected " + std::to_string(payload_size) + " payload bytes, found " +
                std::to_string(bytes.size() - kHeaderBytes));
  }
  const std::string_view payload = bytes.substr(kHeaderBytes);
  const std::uint64_t checked_from =
      version >= 3 ? fnv1a64(bytes.substr(0, kCheckedHeaderBytes)) : kFnvOffsetBasis;
  if (fnv1a64(payload, checked_from) != checksum) {
    header.fail("checksum mismatch (the file was altered or damaged)");
  }
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
  s.hidden_weights.resize(r.size(8));
  for (auto& layer : s.hidden_weights) layer = r.floats();
  s.optimizer_steps = r.pod<std::int64_t>();
  s.optimizer_moments.resize(r.size(16));
  for (auto& m : s.optimizer_moments) {
    m.first = r.floats();
    m.second = r.floats();
  }
  s.live_batchnorm = r.batchnorm();
  s.saved_batchnorm.resize(r.size());
  for (auto& saved : s.saved_batchnorm) {
    if (r.pod<std::uint8_t>() != 0) saved = r.batchnorm();
  }
  s.metrics.resize(r.size(8 + 4 + 8 + 8 + 8 + 8));
  for (auto& row : s.metrics) {
    row.task_trained = r.text();
    row.epoch = r.pod<std::int32_t>();
    row.task_evaluated = r.text();
    row.split = r.text();
    row.accuracy = r.pod<double>();
    row.loss = r.pod<double>();
  }
  if (version >= 2) s.store_state = r.text();
  if (version >= 4) {
    if (r.size(8) != s.optimizer_moments.size()) {
      throw std::runtime_error("checkpoint " + file.string() +
                               " is corrupt: its consolidation state does not match its tensors");
    }
    for (auto& m : s.optimizer_moments) m.consolidation = r.floats();
  }
  if (version >= 5) {
    s.protected_spaces.resize(r.size(8 + 8 + 8));
    for (ProtectedSpace& space : s.protected_spaces) {
      space.rank = static_cast<std::size_t>(r.pod<std::uint64_t>());  // checked by the trainer
      space.basis = r.floats();
      space.anchor = r.floats();
    }
  }
  r.expect_end();
  return s;
}

void check_checkpoint_fits(const TrainingState& state, const std::filesystem::path& file,
                           const Network& network, std::size_t tasks, std::size_t epochs_per_task) {
  auto refuse = [&file](const std::string& what) {
    throw std::runtime_error("checkpoint " + file.string() + " does not fit the run of the " +
                             "config.json next to it: " + what +
                             "; it was altered or made by hand: start a new run instead of "
                             "resuming");
  };
  const std::size_t position_epochs = state.task_index * epochs_per_task + state.epochs_done;
  if (state.task_index > tasks || state.epochs_done >= epochs_per_task ||
      (state.task_index == tasks && state.epochs_done != 0) || position_epochs == 0) {
    refuse("its position (task " + std::to_string(state.task_index) + ", epoch " +
           std::to_string(state.epochs_done) + ") is not after an epoch of " +
           std::to_string(tasks) + " tasks x " + std::to_string(epochs_per_task) + " epochs");
  }
  const auto& layers = network.layers();
  if (state.hidden_weights.size() != layers.size() ||
      state.live_batchnorm.size() != layers.size()) {
    refuse("it has " + std::to_string(state.hidden_weights.size()) + " layers of weights and " +
           std::to_string(state.live_batchnorm.size()) + " of BatchNorm, the network " +
           std::to_string(layers.size()));
  }
  if (state.saved_batchnorm.size() != tasks) {
    refuse("it has saved BatchNorm slots for " + std::to_string(state.saved_batchnorm.size()) +
           " tasks, the run has " + std::to_string(tasks));
  }
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const std::vector<float>& weights = state.hidden_weights[l];
    if (weights.size() != layers[l].hidden.size()) {
      refuse("layer " + std::to_string(l) + " has " + std::to_string(weights.size()) +
             " weights, the network " + std::to_string(layers[l].hidden.size()));
    }
    for (float w : weights) {
      if (!std::isfinite(w)) refuse("layer " + std::to_string(l) + " has a non-finite weight");
    }
    if (state.live_batchnorm[l].gamma.size() != layers[l].outputs) {
      refuse("the BatchNorm of layer " + std::to_string(l) + " has the wrong width");
    }
  }
  if (!state.protected_spaces.empty() && state.protected_spaces.size() != layers.size()) {
    refuse("it has protected spaces for " + std::to_string(state.protected_spaces.size()) +
           " layers, the network " + std::to_string(layers.size()));
  }
  for (std::size_t l = 0; l < state.protected_spaces.size(); ++l) {
    const ProtectedSpace& space = state.protected_spaces[l];
    if (!protected_space_fits(space, layers[l].inputs, layers[l].outputs)) {
      refuse("the protected space of layer " + std::to_string(l) + " (rank " +
             std::to_string(space.rank) + ") does not fit the layer");
    }
  }
  if (state.optimizer_steps < 0) refuse("negative optimizer step count");
  for (std::size_t t = 0; t < state.optimizer_moments.size(); ++t) {
    for (float c : state.optimizer_moments[t].consolidation) {
      if (!(c >= 0.0f) || !std::isfinite(c)) {
        refuse("the consolidation state of optimizer tensor " + std::to_string(t) +
               " has a negative or non-finite value");
      }
    }
  }
}

}  // namespace metaplast::learning
