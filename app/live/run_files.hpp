// The files of a run's folder as the live view links to them (docs/live.md, "Files of the run"):
// GET /files/<path> answers a file of the folder, or a listing of one of its folders. Read-only,
// and nothing outside the folder: a path is letters, digits, "._-=+," and "/" only, no empty,
// "." or ".." part, and what it names, symbolic links resolved, must lie inside the folder.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace metaplast::live {

struct FileAnswer {
  unsigned status = 200;  // 200, 400 (a path that is not allowed), 404, 403 (too large)
  std::string body;
  std::string type = "text/plain; charset=utf-8";
  // More headers: a sandbox for HTML (its scripts do not run, it has no access to the view),
  // "attachment" for what a browser should not show (HDF5, ...).
  std::vector<std::pair<std::string, std::string>> headers;
};

// `path` (the part after "/files/", "" for the folder itself) of the folder `root`; a folder
// answers an HTML listing whose links carry `query` ("?token=..." or ""); a file larger than
// `max_bytes` is refused (403, saying where it is).
FileAnswer run_file(const std::filesystem::path& root, std::string_view path, std::size_t max_bytes,
                    const std::string& query);

}  // namespace metaplast::live
