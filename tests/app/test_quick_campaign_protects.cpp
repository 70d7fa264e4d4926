// Metaplasticity visible at demo scale (docs/method.md 7): the quick campaign's own m* sweep, run
// as the campaign runs it, keeps MNIST within 5 points at the default m* while m* = 0 loses at
// least 40 points of it to Fashion-MNIST.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>

#include "app/campaign/campaign.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/train_config.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;

TEST_CASE("the quick campaign's sweep shows metaplasticity at the default m*", "[campaign]") {
  const auto quick = campaign::load_campaign(METAPLAST_SOURCE_DIR "/campaigns/quick.json");
  const float default_mstar = learning::TrainConfig{}.mstar;
  std::map<float, nlohmann::json> after_task;  // m* -> summary["after_task"]
  for (const auto& step : quick.steps) {
    if (step.id.rfind("sweep/", 0) != 0) continue;
    nlohmann::json options = step.options;
    options["data"] = learning::default_data_dir().string();
    const learning::TrainConfig config = learning::TrainConfig::from_json(options);
    const fs::path dir = test::scratch_path("metaplast-test", "quick-" + step.id.substr(6));
    const nlohmann::json summary = hil::run_training(config, dir, false);
    after_task[config.mstar] = summary["after_task"];
    fs::remove_all(dir);
  }
  REQUIRE(after_task.size() == 2);
  REQUIRE(after_task.count(0.0f) == 1);
  REQUIRE(after_task.count(default_mstar) == 1);
  auto mnist_drop = [&](float mstar) {
    const nlohmann::json& a = after_task[mstar];
    const double first = a["mnist"]["mnist"].get<double>();
    const double last = a["fashion"]["mnist"].get<double>();
    INFO("m* " << mstar << ": MNIST " << first << " after MNIST, " << last << " after Fashion");
    CHECK(first > 0.85);  // MNIST was learned
    return 100.0 * (first - last);
  };
  CHECK(mnist_drop(default_mstar) <= 5.0);
  CHECK(mnist_drop(0.0f) >= 40.0);
  // The default still learns the second task.
  CHECK(after_task[default_mstar]["fashion"]["fashion"].get<double>() > 0.65);
}
