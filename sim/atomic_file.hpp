// Crash-safe file replacement: the file either has its old or its new content, never half.
#pragma once

#include <filesystem>
#include <string_view>

namespace metaplast::sim {

// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
// Throws std::runtime_error naming the file on failure.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

}  // namespace metaplast::sim
