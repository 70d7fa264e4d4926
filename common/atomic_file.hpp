// Crash-safe file replacement: the file either has its old or its new content, never half. The
// one way product code writes a whole file (docs/run-records.md, "Writes").
#pragma once

#include <filesystem>
#include <string_view>

namespace metaplast::common {

enum class Durability {
  // Atomic against a killed process (the page cache survives kill -9); a power cut of the host
  // may lose the last version. For files rewritten often (the simulated chip's state).
  process_kill,
  // Also fsyncs the file before the rename and the directory after it (checkpoints).
  power_loss,
};

// Writes `bytes` to `path` through a temporary file in the same directory (`path` + ".tmp" + the
// process id) and a rename. Every write, the fsyncs, the close and the rename are checked; on any
// failure the temporary file is removed and `path` keeps its old content (or stays absent).
// Throws std::runtime_error naming `path` and the system's reason (e.g. "No space left on
// device").
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                           Durability durability = Durability::process_kill);

}  // namespace metaplast::common
