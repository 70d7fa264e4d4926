// The live view's server (app/live/live_server.hpp) at the HTTP level: every endpoint's status
// and content, the updates as Server-Sent Events, bad and oversized requests, 50 clients at once,
// a client that never reads, the connection limit and the token.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "app/live/live_server.hpp"

namespace fs = std::filesystem;
using metaplast::live::LiveFeed;
using metaplast::live::LiveServer;
using metaplast::live::ServerOptions;

namespace {

// A connected client socket to 127.0.0.1:port, closed on destruction.
struct Client {
  int fd = -1;
  explicit Client(unsigned short port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~Client() { ::close(fd); }
  void send(const std::string& text) const {
    REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(text.size()));
  }
  // Reads until `until` appears in what was read, the peer closes, or 5 s pass.
  std::string receive(const std::string& until = "") const {
    std::string text;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
      if (!until.empty() && text.find(until) != std::string::npos) break;
    }
    return text;
  }
};

std::string get(unsigned short port, const std::string& target, const std::string& extra = "") {
  Client c(port);
  c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + "\r\n");
  return c.receive();
}

int status_of(const std::string& response) {
  return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0;
}

std::string body_of(const std::string& response) {
  const auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

fs::path asset_folder() {
  const fs::path dir = fs::temp_directory_path() / "metaplast-live-assets";
  fs::create_directories(dir);
  std::ofstream(dir / "index.html") << "<!doctype html><title>metaplast live</title>";
  std::ofstream(dir / "live.js") << "console.log('live');";
  std::ofstream(dir / "live.css") << "body {}";
  std::ofstream(dir / "uPlot.min.css") << ".uplot {}";
  std::ofstream(dir / "secret.txt") << "not served";
  return dir;
}

// The page's files as the server finds them: the page in one folder, uPlot's script in a second
// one, as the source tree's web/ and <data>/web.
std::vector<fs::path> test_assets() {
  const fs::path vendor = asset_folder() / "vendor";
  fs::create_directories(vendor);
  std::ofstream(vendor / "uPlot.iife.min.js") << "var uPlot;";
  return {asset_folder(), vendor};
}

struct Fixture {
  LiveFeed feed;
  std::vector<std::string> stops;
  std::unique_ptr<LiveServer> server;
  explicit Fixture(ServerOptions options = {}) {
    options.assets = test_assets();
    server = std::make_unique<LiveServer>(
        feed, options, [this](const std::string& from) { stops.push_back(from); });
  }
  unsigned short port() const { return server->port(); }
};

}  // namespace

TEST_CASE("the page, its assets and the snapshot are served; nothing else", "[live]") {
  Fixture f;
  f.feed.publish("progress", {{"fraction", 0.25}});
  f.feed.publish("epoch", {{"epoch", 1}, {"accuracy", 0.9}});
  f.feed.publish("epoch", {{"epoch", 2}, {"accuracy", 0.95}});

  const auto page = get(f.port(), "/");
  CHECK(status_of(page) == 200);
  CHECK(page.find("text/html") != std::string::npos);
  CHECK(body_of(page).find("metaplast live") != std::string::npos);
  CHECK(status_of(get(f.port(), "/assets/live.js")) == 200);
  const auto vendor = get(f.port(), "/assets/uPlot.iife.min.js");  // from the second folder
  CHECK(status_of(vendor) == 200);
  CHECK(body_of(vendor) == "var uPlot;");

  const auto snapshot = get(f.port(), "/api/snapshot");
  REQUIRE(status_of(snapshot) == 200);
  const auto json = nlohmann::json::parse(body_of(snapshot));
  CHECK(json["seq"] == 3);
  CHECK(json["state"]["progress"]["fraction"] == 0.25);
  CHECK(json["series"]["epoch"].size() == 2);
  CHECK(json["series"]["epoch"][1]["accuracy"] == 0.95);

  CHECK(status_of(get(f.port(), "/assets/secret.txt")) == 404);
  CHECK(status_of(get(f.port(), "/assets/../../etc/passwd")) == 404);
  CHECK(status_of(get(f.port(), "/nothing")) == 404);
  CHECK(status_of(get(f.port(), "/api/events?since=abc")) == 400);
}

TEST_CASE("a server whose page files are missing does not start, and says which", "[live]") {
  LiveFeed feed;
  ServerOptions options;
  options.assets = {asset_folder()};  // no uPlot.iife.min.js
  try {
    LiveServer server(feed, options, [](const std::string&) {});
    FAIL("the server started without uPlot.iife.min.js");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("uPlot.iife.min.js") != std::string::npos);
    CHECK(std::string(e.what()).find("fetch_data.sh") != std::string::npos);
  }
}

TEST_CASE("bad, oversized and write requests get 4xx and the server goes on", "[live]") {
  Fixture f;
  {
    Client c(f.port());
    c.send("THIS IS NOT HTTP\r\n\r\n");
    CHECK(status_of(c.receive()) == 400);
  }
  {
    Client c(f.port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    CHECK(status_of(c.receive()) == 413);
  }
  {
    Client c(f.port());
    c.send("POST /api/snapshot HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    CHECK(status_of(c.receive()) == 405);
  }
  CHECK(status_of(get(f.port(), "/api/snapshot")) == 200);
}

TEST_CASE("updates arrive as server-sent events, in order, from where the client was", "[live]") {
  Fixture f;
  f.feed.publish("step", {{"step", 1}, {"loss", 2.0}});
  Client c(f.port());
  c.send("GET /api/events?since=0 HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string text = c.receive("event: step");
  CHECK(text.find("text/event-stream") != std::string::npos);
  f.feed.publish("epoch", {{"epoch", 1}, {"accuracy", 0.5}});
  f.feed.publish("status", {{"state", "finished"}, {"exit_status", 0}});
  text += c.receive("event: status");
  const auto first = text.find("id: 1\nevent: step\ndata: {\"loss\":2.0,\"step\":1}");
  const auto second = text.find("id: 2\nevent: epoch");
  const auto third =
      text.find("id: 3\nevent: status\ndata: {\"exit_status\":0,\"state\":\"finished\"}");
  CHECK(first != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(third != std::string::npos);
  CHECK((first < second && second < third));
}

TEST_CASE("a command that ends waits until its last update was sent to every page", "[live]") {
  Fixture f;
  CHECK(f.server->wait_delivered(f.feed.last_seq(), std::chrono::milliseconds(0)));  // no page
  Client c(f.port());
  c.send("GET /api/events?since=0 HTTP/1.1\r\nHost: x\r\n\r\n");
  c.receive("metaplast live view");
  f.feed.publish("status", {{"state", "finished"}, {"exit_status", 0}});
  // Not yet sent the instant it is published (the server's thread takes it within an event
  // interval).
  CHECK(f.server->wait_delivered(f.feed.last_seq(), std::chrono::milliseconds(3000)));
  CHECK(c.receive("event: status").find("\"finished\"") != std::string::npos);
  CHECK_FALSE(f.server->wait_delivered(f.feed.last_seq() + 1, std::chrono::milliseconds(200)));
}

TEST_CASE("50 clients at once all get the updates", "[live]") {
  Fixture f;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::make_unique<Client>(f.port()));
    clients.back()->send("GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  for (auto& c : clients) c->receive("metaplast live view");
  f.feed.publish("progress", {{"fraction", 0.5}});
  int got = 0;
  for (auto& c : clients) got += c->receive("event: progress").find("0.5") != std::string::npos;
  CHECK(got == 50);
}

TEST_CASE("a client that never reads is dropped, and the others are not held back", "[live]") {
  ServerOptions options;
  options.write_timeout = std::chrono::milliseconds(500);
  Fixture f(options);
  Client stuck(f.port());
  {
    int small = 4096;
    ::setsockopt(stuck.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  stuck.send("GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n");
  Client reader(f.port());
  reader.send("GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n");
  reader.receive("metaplast live view");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string big(60000, 'x');
  for (int i = 0; i < 200; ++i) f.feed.publish("plot", {{"i", i}, {"data", big}});
  f.feed.publish("status", {{"state", "finished"}});
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));  // never waits
  CHECK(reader.receive("event: status").find("finished") != std::string::npos);
  // The stuck client's writes time out: it is dropped (its connection no longer counted).
  for (int i = 0; i < 50 && f.server->open_connections() > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(f.server->open_connections() <= 1);
}

TEST_CASE("beyond the connection limit a client gets 503", "[live]") {
  ServerOptions options;
  options.max_connections = 3;
  Fixture f(options);
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Client>(f.port()));
    held.back()->send("GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n");
    held.back()->receive("metaplast live view");
  }
  CHECK(status_of(get(f.port(), "/api/snapshot")) == 503);
  held.clear();
  for (int i = 0; i < 50 && f.server->open_connections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(status_of(get(f.port(), "/api/snapshot")) == 200);
}

TEST_CASE("the stop action needs the token and POST", "[live]") {
  Fixture f;
  auto post = [&](const std::string& target, const std::string& extra = "") {
    Client c(f.port());
    c.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n" +
           extra + "\r\n");
    return c.receive();
  };
  CHECK(status_of(post("/api/stop")) == 403);
  CHECK(status_of(post("/api/stop?token=wrong")) == 403);
  CHECK(f.stops.empty());
  CHECK(status_of(get(f.port(), "/api/stop?token=" + f.server->token())) == 405);
  CHECK(status_of(post("/api/stop?token=" + f.server->token())) == 202);
  CHECK(status_of(post("/api/stop", "Authorization: Bearer " + f.server->token() + "\r\n")) == 202);
  REQUIRE(f.stops.size() == 2);
  CHECK(f.stops[0] == "127.0.0.1");
  CHECK_FALSE(f.server->token_required());
  CHECK(f.server->url().find("?token=" + f.server->token()) != std::string::npos);
}

TEST_CASE("a listener that is not loopback refuses every request without the token", "[live]") {
  ServerOptions options;
  options.listen = "0.0.0.0";
  Fixture f(options);
  CHECK(f.server->token_required());
  CHECK(status_of(get(f.port(), "/api/snapshot")) == 401);
  CHECK(status_of(get(f.port(), "/")) == 401);
  CHECK(status_of(get(f.port(), "/api/snapshot?token=" + f.server->token())) == 200);
  CHECK(status_of(get(f.port(), "/", "Authorization: Bearer " + f.server->token() + "\r\n")) ==
        200);
  ServerOptions bad;
  bad.listen = "not-an-address";
  bad.assets = test_assets();
  CHECK_THROWS_WITH(LiveServer(f.feed, bad, {}), Catch::Contains("not an IP address"));
}

namespace {

// A run folder: a step folder with a plot, a CSV, an HDF5 file and an HTML report, a file
// outside it and a symbolic link to that file from inside.
fs::path run_folder() {
  const fs::path root = fs::temp_directory_path() / "metaplast-live-files";
  fs::remove_all(root);
  fs::create_directories(root / "run" / "steps" / "sweep" / "mstar=3");
  const fs::path step = root / "run" / "steps" / "sweep" / "mstar=3";
  std::ofstream(step / "metrics.csv") << "task,accuracy\nmnist,0.97\n";
  std::ofstream(step / "plot.png", std::ios::binary) << "\x89PNG\r\n";
  std::ofstream(step / "snapshot.h5") << "HDF";
  std::ofstream(step / "report.html") << "<script>alert(1)</script>";
  std::ofstream(step / "big.csv") << std::string(3000, 'x');
  std::ofstream(step / "odd name.txt") << "x";
  std::ofstream(root / "outside.txt") << "secret";
  fs::create_symlink(root / "outside.txt", step / "link.txt");
  fs::create_directory_symlink(root, root / "run" / "up");
  return root / "run";
}

}  // namespace

TEST_CASE("the run's files: its folders listed, its files served, nothing outside", "[live]") {
  ServerOptions options;
  options.files = run_folder();
  options.max_file_bytes = 2048;
  Fixture f(options);
  const std::string step = "/files/steps/sweep/mstar=3/";

  const auto listing = get(f.port(), step);
  REQUIRE(status_of(listing) == 200);
  CHECK(listing.find("text/html") != std::string::npos);
  CHECK(body_of(listing).find("href=\"/files/steps/sweep/mstar=3/metrics.csv\"") !=
        std::string::npos);
  CHECK(body_of(listing).find("odd name.txt (a name this view does not serve)") !=
        std::string::npos);
  CHECK(status_of(get(f.port(), "/files/")) == 200);
  CHECK(status_of(get(f.port(), "/files")) == 200);

  const auto csv = get(f.port(), step + "metrics.csv");
  CHECK(status_of(csv) == 200);
  CHECK(csv.find("text/plain") != std::string::npos);
  CHECK(body_of(csv) == "task,accuracy\nmnist,0.97\n");
  CHECK(get(f.port(), step + "plot.png").find("image/png") != std::string::npos);
  CHECK(get(f.port(), step + "snapshot.h5").find("attachment") != std::string::npos);
  // A report's scripts do not run in the view's origin.
  CHECK(get(f.port(), step + "report.html").find("Content-Security-Policy: sandbox") !=
        std::string::npos);
  const auto big = get(f.port(), step + "big.csv");
  CHECK(status_of(big) == 403);
  CHECK(body_of(big).find("too large") != std::string::npos);

  // Outside the folder: by name, by encoding, by a link.
  for (const std::string bad :
       {"/files/../outside.txt", "/files/steps/../../outside.txt", "/files/%2e%2e/outside.txt",
        "/files//etc/passwd", "/files/steps//sweep", "/files/./steps"}) {
    CAPTURE(bad);
    CHECK(status_of(get(f.port(), bad)) == 400);
  }
  CHECK(status_of(get(f.port(), step + "link.txt")) == 404);
  CHECK(status_of(get(f.port(), "/files/up/outside.txt")) == 404);
  CHECK(status_of(get(f.port(), step + "missing.csv")) == 404);
  CHECK(status_of(get(f.port(), "/files/steps/sweep/mstar=3/metrics.csv/x")) == 404);

  Fixture none;  // a view without a folder serves none
  CHECK(status_of(get(none.port(), "/files/")) == 404);
}

TEST_CASE("off loopback, the run's files need the token and the listing's links carry it",
          "[live]") {
  ServerOptions options;
  options.listen = "0.0.0.0";
  options.files = run_folder();
  Fixture f(options);
  CHECK(status_of(get(f.port(), "/files/steps/")) == 401);
  const auto listing = get(f.port(), "/files/steps/?token=" + f.server->token());
  REQUIRE(status_of(listing) == 200);
  CHECK(body_of(listing).find("href=\"/files/steps/sweep/?token=" + f.server->token() + "\"") !=
        std::string::npos);
}
