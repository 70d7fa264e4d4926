// The layering of docs/architecture.md, checked: every #include "folder/..." in the product's
// folders (and bench/) must be one the table "Who may include whom" allows. The table is read
// from the document itself, so the document and the code cannot drift apart.
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = METAPLAST_SOURCE_DIR;

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> split_list(const std::string& cell) {
  std::vector<std::string> items;
  std::string item;
  std::istringstream in(cell);
  while (std::getline(in, item, ',')) {
    const auto first = item.find_first_not_of(" `");
    if (first == std::string::npos) continue;
    const auto last = item.find_last_not_of(" `");
    items.push_back(item.substr(first, last - first + 1));
  }
  return items;
}

// folder -> the folders it may include, from the table after the marker line.
std::map<std::string, std::set<std::string>> allowed_edges() {
  const std::string doc = read_text(kRoot / "docs/architecture.md");
  const auto marker = doc.find("<!-- layering table");
  REQUIRE(marker != std::string::npos);
  std::istringstream lines(doc.substr(marker));
  std::string line;
  std::getline(lines, line);  // the marker
  std::map<std::string, std::set<std::string>> table;
  const std::regex row(R"(^\|\s*`?([a-z_/]+)`?\s*\|([^|]*)\|)");
  while (std::getline(lines, line)) {
    if (line.rfind('|', 0) != 0) {
      if (!table.empty()) break;
      continue;
    }
    std::smatch m;
    if (!std::regex_search(line, m, row) || m[1] == "folder") continue;
    const auto items = split_list(m[2]);
    table[m[1]] = {items.begin(), items.end()};
  }
  return table;
}

// "app/hil/journal.hpp" -> "app/hil"; "sim/chip.hpp" -> "sim".
std::string folder_of(const std::string& path) {
  const auto slash = path.find('/');
  if (slash == std::string::npos) return "";
  const std::string top = path.substr(0, slash);
  if (top != "app") return top;
  const auto second = path.find('/', slash + 1);
  return second == std::string::npos ? top : path.substr(0, second);
}

// The includes of `text` (file `file`, in folder `from`) that `allowed` does not permit; counts
// the includes of repository headers in `checked`.
std::vector<std::string> include_violations(const std::string& file, const std::string& text,
                                            const std::set<std::string>& allowed,
                                            std::size_t& checked) {
  static const std::regex include_line(R"(^\s*#\s*include\s*\"([^\"]+)\")");
  const std::string from = folder_of(file);
  std::vector<std::string> violations;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    std::smatch m;
    if (!std::regex_search(line, m, include_line)) continue;
    const std::string target = m[1];
    const std::string to = folder_of(target);
    if (to.empty() || !fs::exists(kRoot / target)) continue;  // a header beside the file
    ++checked;
    if (to == from || allowed.count(to) != 0) continue;
    violations.push_back(file + ":" + std::to_string(number) + ": " + from + " may not include " +
                         target);
  }
  return violations;
}

}  // namespace

TEST_CASE("docs/architecture.md's layering table lists every folder of the product",
          "[layering]") {
  const auto table = allowed_edges();
  for (const char* folder : {"protocols", "drivers", "common", "devices", "instruments", "sim",
                             "app/learning", "app/hil", "app/cli", "bench", "python"}) {
    INFO(folder);
    CHECK(table.count(folder) == 1);
  }
  // Every folder an entry names exists,; the bottom layers below.
  for (const auto& [folder, allowed] : table) {
    INFO(folder);
    CHECK(fs::is_directory(kRoot / folder));
    for (const auto& target : allowed) CHECK(fs::is_directory(kRoot / target));
  }
  // protocols/ and drivers/ know nothing of each other or of anything above; of common/ (which
  // knows nothing of ours) they use the header-only enum-name tables.
  CHECK(table.at("common").empty());
  for (const char* bottom : {"protocols", "drivers"}) {
    INFO(bottom);
    const auto& allowed = table.at(bottom);
    CHECK(std::all_of(allowed.begin(), allowed.end(),
                      [](const std::string& target) { return target == "common"; }));
  }
}

TEST_CASE("no include crosses the documented layering", "[layering]") {
  const auto table = allowed_edges();
  std::vector<std::string> violations;
  std::size_t checked = 0;
  for (const char* top : {"protocols", "drivers", "common", "devices", "instruments", "sim", "app",
                          "bench", "python"}) {
    for (const auto& entry : fs::recursive_directory_iterator(kRoot / top)) {
      const auto ext = entry.path().extension();
      if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".hpp" && ext != ".h")) continue;
      const std::string file = fs::relative(entry.path(), kRoot).generic_string();
      const std::string from = folder_of(file);
      const auto rules = table.find(from);
      if (rules == table.end()) {
        violations.push_back(file + ": folder " + from +
                             " is not in docs/architecture.md's layering table; add it");
        continue;
      }
      const auto found = include_violations(file, read_text(entry.path()), rules->second, checked);
      violations.insert(violations.end(), found.begin(), found.end());
    }
  }
  for (const auto& v : violations) UNSCOPED_INFO(v);
  CHECK(violations.empty());
  CHECK(checked > 200);  // the scan saw the tree
}

TEST_CASE("the check names a file, its line and the include that crosses the layering",
          "[layering]") {
  const auto table = allowed_edges();
  std::size_t checked = 0;
  const std::string text =
      "#include <vector>\n#include \"instruments/array_board.hpp\"\n"
      "#include \"app/hil/journal.hpp\"\n#include \"local.hpp\"\n";
  const auto found =
      include_violations("instruments/example.cpp", text, table.at("instruments"), checked);
  REQUIRE(found.size() == 1);
  CHECK(found[0] == "instruments/example.cpp:3: instruments may not include app/hil/journal.hpp");
  CHECK(checked == 2);
  CHECK(include_violations("app/learning/example.cpp", "#include \"app/hil/journal.hpp\"\n",
                           table.at("app/learning"), checked)
            .size() == 1);
}
