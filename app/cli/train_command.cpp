// Placeholder: `metaplast train` lands with the learning core.
#include <stdexcept>

#include "app/cli/commands.hpp"

namespace metaplast::cli {

void add_train_command(CLI::App& root) {
  auto* train = root.add_subcommand("train", "Train the metaplastic network (not built yet)");
  train->callback([] { throw std::runtime_error("train: not implemented yet"); });
}

}  // namespace metaplast::cli
