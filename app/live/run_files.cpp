#include "app/live/run_files.hpp"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "app/live/html.hpp"

namespace metaplast::live {

namespace {

namespace fs = std::filesystem;

bool allowed_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '=' || c == '+' || c == ',';
}

// The parts of `path` ("a/b/c", one trailing "/" allowed), or nullopt when one is not allowed.
std::optional<std::vector<std::string>> parts_of(std::string_view path) {
  if (path.size() > 1024) return std::nullopt;
  if (path.ends_with('/')) path.remove_suffix(1);
  std::vector<std::string> parts;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (part.empty() || part == "." || part == ".." ||
        !std::all_of(part.begin(), part.end(), allowed_char)) {
      return std::nullopt;
    }
    parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (path.empty()) return std::nullopt;  // "a//" or a trailing "/" after the one removed
  }
  return parts;
}

bool inside(const fs::path& base, const fs::path& p) {
  auto b = base.begin(), q = p.begin();
  for (; b != base.end(); ++b, ++q) {
    if (q == p.end() || *b != *q) return false;
  }
  return true;
}

std::string type_of(const fs::path& file,
                    std::vector<std::pair<std::string, std::string>>& headers) {
  const std::string ext = file.extension().string();
  if (ext == ".png") return "image/png";
  if (ext == ".json") return "application/json";
  if (ext == ".html") {
    headers.emplace_back("Content-Security-Policy", "sandbox");
    return "text/html; charset=utf-8";
  }
  for (const char* text : {".csv", ".txt", ".log", ".jsonl", ".gp", ".dat", ".md"}) {
    if (ext == text) return "text/plain; charset=utf-8";
  }
  headers.emplace_back("Content-Disposition",
                       "attachment; filename=\"" + file.filename().string() + "\"");
  return "application/octet-stream";
}

FileAnswer listing(const fs::path& dir, const std::vector<std::string>& parts,
                   const std::string& query) {
  std::string where;
  for (const auto& p : parts) where += p + "/";
  std::vector<std::pair<std::string, bool>> entries;  // name, is a folder
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    entries.emplace_back(e.path().filename().string(), e.is_directory(ec));
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second : a.first < b.first;
  });
  std::ostringstream html;
  html << "<!doctype html><meta charset=\"utf-8\"><title>"
       << html_escape(where.empty() ? "/" : where)
       << "</title><style>body{font-family:sans-serif;margin:2em}</style><h1>run folder: "
       << html_escape(where.empty() ? "/" : where) << "</h1><ul>";
  if (!parts.empty()) {
    std::string up;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) up += parts[i] + "/";
    html << "<li><a href=\"/files/" << html_escape(up) << html_escape(query) << "\">..</a></li>";
  }
  for (const auto& [name, folder] : entries) {
    const std::string shown = html_escape(name) + (folder ? "/" : "");
    if (parts_of(name) && name.find('/') == std::string::npos) {
      html << "<li><a href=\"/files/" << html_escape(where + name) << (folder ? "/" : "")
           << html_escape(query) << "\">" << shown << "</a></li>";
    } else {
      html << "<li>" << shown << " (a name this view does not serve)</li>";
    }
  }
  html << "</ul>";
  return {200, html.str(), "text/html; charset=utf-8", {}};
}

}  // namespace

FileAnswer run_file(const fs::path& root, std::string_view path, std::size_t max_bytes,
                    const std::string& query) {
  const auto parts = parts_of(path);
  if (!parts) {
    return {400,
            "not a path this view serves: letters, digits, ._-=+, and / only, no . or .. part",
            "text/plain; charset=utf-8",
            {}};
  }
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return {404, "the run folder does not exist (yet)", "text/plain; charset=utf-8", {}};
  fs::path target = base;
  for (const auto& p : *parts) target /= p;
  target = fs::canonical(target, ec);  // symbolic links resolved: must stay inside
  if (ec || !inside(base, target)) return {404, "not found", "text/plain; charset=utf-8", {}};
  if (fs::is_directory(target, ec)) return listing(target, *parts, query);
  if (!fs::is_regular_file(target, ec)) return {404, "not found", "text/plain; charset=utf-8", {}};
  const auto size = fs::file_size(target, ec);
  if (ec) return {404, "not found", "text/plain; charset=utf-8", {}};
  if (size > max_bytes) {
    return {403,
            "too large to serve here (" + std::to_string(size >> 20) + " MiB; at most " +
                std::to_string(max_bytes >> 20) + " MiB): open it on the run's machine",
            "text/plain; charset=utf-8",
            {}};
  }
  std::ifstream in(target, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  if (!in) return {404, "not readable", "text/plain; charset=utf-8", {}};
  FileAnswer answer;
  answer.type = type_of(target, answer.headers);
  answer.body = content.str();
  return answer;
}

}  // namespace metaplast::live
