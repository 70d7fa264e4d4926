#include "app/util/gnuplot.hpp"

#include "app/util/process.hpp"

namespace metaplast::util {

std::string gnuplot_quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "''";
    } else if (c == '\n' || c == '\r' || c == '\0') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string gnuplot_quote_text(std::string_view text) {
  std::string escaped;
  for (char c : text) {
    // In a single-quoted string one backslash reaches the enhanced-text parser as is.
    if (c == '^' || c == '_' || c == '@' || c == '&' || c == '~' || c == '{' || c == '}' ||
        c == '\\') {
      escaped += '\\';
    }
    escaped += c;
  }
  return gnuplot_quote(escaped);
}

bool gnuplot_installed() { return find_program("gnuplot").has_value(); }

std::string run_gnuplot(const std::filesystem::path& script, std::chrono::seconds timeout) {
  const auto dir = script.parent_path().empty() ? std::filesystem::path(".") : script.parent_path();
  if (!gnuplot_installed()) {
    return "gnuplot is not installed (Debian: apt-get install gnuplot-nox); draw the plot later "
           "with `gnuplot " +
           script.filename().string() + "` in " + dir.string();
  }
  ProcessOptions options;
  options.working_directory = dir;
  options.timeout = timeout;
  const ProcessResult r = run_process({"gnuplot", script.filename().string()}, options);
  if (r.ok()) return "";
  std::string message = "gnuplot failed on " + script.string() + " (" + r.describe() + ")";
  std::string detail = r.err.empty() ? r.out : r.err;
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  if (!detail.empty()) message += ": " + detail;
  return message;
}

}  // namespace metaplast::util
