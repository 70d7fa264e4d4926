// `metaplast report DIR`: HTML page and PNG plots of a train, campaign or characterize directory.
#include <cstdio>
#include <memory>

#include "app/cli/commands.hpp"
#include "app/report/report.hpp"

namespace metaplast::cli {

void add_report_command(CLI::App& root) {
  auto dir = std::make_shared<std::string>();
  auto* cmd = root.add_subcommand(
      "report",
      "Write DIR/report/index.html with PNG plots (gnuplot) of a train, campaign or characterize "
      "directory");
  cmd->add_option("DIR", *dir,
                  "A run directory (metaplast train --out, metaplast campaign run or metaplast "
                  "characterize --out)")
      ->required();
  cmd->callback([dir] {
    const auto page = report::write_report(*dir);
    for (const auto& m : page.missing) std::printf("not plotted: %s\n", m.c_str());
    for (const auto& e : page.errors) std::fprintf(stderr, "plot error: %s\n", e.c_str());
    std::printf("report: %s (%zu plots)\n", page.index.string().c_str(), page.images.size());
    if (!page.errors.empty()) throw std::runtime_error("some plots failed (listed above)");
  });
}

}  // namespace metaplast::cli
