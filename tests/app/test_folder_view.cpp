// report::FolderView (app/report/folder_view.hpp): a run or campaign folder being written, read
// as live-view updates: whole epochs only, each published once, the end recognised.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "app/report/folder_view.hpp"

namespace fs = std::filesystem;
using metaplast::live::LiveFeed;
using metaplast::report::FolderView;

namespace {

fs::path fresh_folder(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("metaplast-folder-view-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& file, const std::string& text, bool append = false) {
  std::ofstream(file, append ? std::ios::app : std::ios::trunc) << text;
  // Another size each time: FolderView notices a change by size or time.
}

}  // namespace

TEST_CASE("a train run folder is followed epoch by epoch to its summary", "[live][view]") {
  const fs::path dir = fresh_folder("train");
  write(dir / "config.json", R"({"options": {"tasks": ["mnist", "fashion"], "epochs": 2}})");
  write(dir / "metrics.csv",
        "task_trained,epoch,task_evaluated,split,accuracy,loss\n"
        "mnist,1,mnist,test,0.9,0.3\nmnist,1,fashion,test,0.1,2.5\n"
        "mnist,2,mnist,test,0.92");  // the second epoch's first line, cut by a write in progress
  LiveFeed feed;
  FolderView view(dir, feed);
  CHECK_FALSE(view.poll());
  auto snapshot = feed.snapshot();
  REQUIRE(snapshot["series"]["epoch"].size() == 1);
  CHECK(snapshot["series"]["epoch"][0]["epoch_index"] == 1);
  CHECK(snapshot["series"]["epoch"][0]["evaluations"].size() == 2);
  CHECK(snapshot["state"]["status"]["state"] == "running");
  CHECK(snapshot["state"]["progress"]["fraction"] == 0.25);

  write(dir / "metrics.csv", ",0.28\nmnist,2,fashion,test,0.1,2.4\n", true);
  write(dir / "metrics.csv", "fashion,1,mnist,test,0.8,0.6\nfashion,1,fashion,test,0.7,0.9\n",
        true);
  CHECK_FALSE(view.poll());
  CHECK_FALSE(view.poll());  // nothing new: nothing published again
  snapshot = feed.snapshot();
  REQUIRE(snapshot["series"]["epoch"].size() == 3);
  CHECK(snapshot["series"]["epoch"][1]["evaluations"][0]["accuracy"] == 0.92);
  CHECK(snapshot["series"]["epoch"][2]["epoch_index"] == 3);  // fashion epoch 1, after 2 of mnist

  write(dir / "conductances.csv", "row,col,conductance_us\n0,0,42.5\n127,127,3.25\n1,300,9\n");
  write(dir / "summary.json",
        R"({"final": {}, "writes": {"per_epoch": [10, 5, 7, 3], "total": 25}})");
  CHECK(view.poll());
  snapshot = feed.snapshot();
  CHECK(snapshot["state"]["status"]["state"] == "finished");
  CHECK(snapshot["state"]["status"]["exit_status"] == 0);
  CHECK(snapshot["state"]["writes"]["per_epoch"].size() == 4);
  const auto& map = snapshot["state"]["board_map"]["conductance_us"];
  REQUIRE(map.size() == 128 * 128);
  CHECK(map[0] == 42.5);
  CHECK(map[128 * 128 - 1] == 3.25);  // the out-of-range cell (1, 300) is ignored
  CHECK(map[1].is_null());
  fs::remove_all(dir);
}

TEST_CASE("a campaign folder shows its steps and how it ended", "[live][view]") {
  const fs::path dir = fresh_folder("campaign");
  write(dir / "plan.json", R"({"steps": [{"id": "a", "type": "train", "dir": "steps/a"},
                                         {"id": "<b>", "type": "report", "dir": "steps/b"}]})");
  write(dir / "state.json", R"({"steps": [{"id": "a", "type": "train", "status": "done"},
                                          {"id": "<b>", "type": "report", "status": "running"}]})");
  write(dir / "record.json", R"({"status": "running", "exit_code": null})");
  LiveFeed feed;
  FolderView view(dir, feed);
  CHECK(view.is_campaign());
  CHECK_FALSE(view.poll());
  auto snapshot = feed.snapshot();
  const auto& steps = snapshot["state"]["campaign"]["steps"];
  REQUIRE(steps.size() == 2);
  CHECK(steps[0]["dir"] == "steps/a");
  CHECK(steps[1]["status"] == "running");
  CHECK(snapshot["state"]["progress"]["fraction"] == 0.5);

  write(dir / "record.json", R"({"status": "failed", "exit_code": 1})");
  CHECK(view.poll());
  snapshot = feed.snapshot();
  CHECK(snapshot["state"]["status"]["state"] == "failed");
  CHECK(snapshot["state"]["status"]["exit_status"] == 1);
  fs::remove_all(dir);
}

TEST_CASE("a folder that is neither a run nor a campaign is refused, saying what it expected",
          "[live][view]") {
  const fs::path dir = fresh_folder("empty");
  LiveFeed feed;
  CHECK_THROWS_WITH(FolderView(dir, feed), Catch::Contains("neither a train run folder"));
  fs::remove_all(dir);
}
