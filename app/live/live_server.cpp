// LiveServer (live_server.hpp): Boost.Beast, one io_context thread, one Session per connection.
#include "app/live/live_server.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange (GCC 12, C++20)
#include <vector>

#include "app/live/run_files.hpp"

namespace metaplast::live {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// The page's files: the only paths served, read once from the asset folders.
const char* const kAssets[] = {"index.html", "live.js", "live.css", "uPlot.iife.min.js",
                               "uPlot.min.css"};

std::string content_type(const std::string& name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

// Every asset from the first folder that has it; std::runtime_error naming what is missing.
std::map<std::string, std::string> load_assets(const std::vector<std::filesystem::path>& folders) {
  std::map<std::string, std::string> assets;
  for (const char* name : kAssets) {
    for (const auto& folder : folders) {
      std::ifstream in(folder / name, std::ios::binary);
      if (!in) continue;
      std::ostringstream text;
      text << in.rdbuf();
      assets[name] = text.str();
      break;
    }
    if (assets.count(name) == 0) {
      std::string searched;
      for (const auto& folder : folders)
        searched += (searched.empty() ? "" : ", ") + folder.string();
      throw std::runtime_error(std::string("live view: the page's file ") + name +
                               " is in none of the asset folders (" + searched +
                               "); scripts/fetch_data.sh fetches uPlot into <data>/web, the "
                               "page's own files are in the source tree's web/");
    }
  }
  return assets;
}

// "a=1&token=x" -> the value of `key`, or "".
std::string query_value(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == key) {
      return std::string(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return {};
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// Compares without an early exit, so the time taken says nothing of the token.
bool same_token(const std::string& given, const std::string& token) {
  if (given.size() != token.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < token.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ token[i]);
  }
  return difference == 0;
}

}  // namespace

std::string random_token() {
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[16];
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
    throw std::runtime_error("cannot read /dev/urandom for the live view's token");
  }
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token += hex[b >> 4];
    token += hex[b & 15];
  }
  return token;
}

struct LiveServer::Impl {
  LiveFeed& feed;
  ServerOptions options;
  std::function<void(const std::string&)> on_stop;
  const std::map<std::string, std::string> assets = load_assets(options.assets);
  std::string token = random_token();
  bool loopback = true;
  // Before io: the sessions io still holds when it is destroyed count themselves out here, and
  // take their streams out of stream_sent (the last update each has been sent, for
  // wait_delivered()).
  std::atomic<std::size_t> connections{0};
  mutable std::mutex streams_mutex;
  std::map<const void*, std::uint64_t> stream_sent;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;

  Impl(LiveFeed& f, ServerOptions o, std::function<void(const std::string&)> stop)
      : feed(f), options(std::move(o)), on_stop(std::move(stop)) {}

  void accept();
  void stream_sent_up_to(const void* stream, std::uint64_t seq) {
    const std::lock_guard lock(streams_mutex);
    stream_sent[stream] = seq;
  }
  void stream_gone(const void* stream) {
    const std::lock_guard lock(streams_mutex);
    stream_sent.erase(stream);
  }
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, LiveServer::Impl& server)
      : stream_(std::move(socket)), server_(server), timer_(stream_.get_executor()) {
    ++server_.connections;
    beast::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? std::string("?") : endpoint.address().to_string();
  }
  ~Session() {
    server_.stream_gone(this);
    --server_.connections;
  }

  void start() { read_request(); }

 private:
  using Response = http::response<http::string_body>;

  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_request_bytes));
    parser_->body_limit(server_.options.max_request_bytes);
    stream_.expires_after(server_.options.request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_request(ec); });
  }

  void on_request(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout) return close();
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      return reply(http::status::payload_too_large, "request too large", false);
    }
    if (ec) return reply(http::status::bad_request, "malformed request", false);
    const auto& request = parser_->get();
    keep_alive_ = request.keep_alive();
    route(request);
  }

  bool authorised(const http::request<http::string_body>& request) const {
    const std::string target(request.target());
    std::string given = query_value(target, "token");
    const std::string header(request[http::field::authorization]);
    if (given.empty() && header.starts_with("Bearer ")) given = header.substr(7);
    return same_token(given, server_.token);
  }

  void route(const http::request<http::string_body>& request) {
    const std::string target(request.target());
    const std::string_view path = path_of(target);
    const bool token_ok = authorised(request);
    if (!server_.loopback && !token_ok) {
      return reply(http::status::unauthorized, "this live view needs its token (?token=...)",
                   false);
    }
    if (path == "/api/stop") {
      if (request.method() != http::verb::post) {
        return reply(http::status::method_not_allowed, "use POST", keep_alive_);
      }
      if (!token_ok) return reply(http::status::forbidden, "stopping needs the token", false);
      server_.on_stop(peer_);
      return reply(http::status::accepted, R"({"stopping":true})", keep_alive_, "application/json");
    }
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      return reply(http::status::method_not_allowed, "read-only (GET)", keep_alive_);
    }
    if (path == "/" || path == "/index.html") return serve_asset("index.html");
    if (path.starts_with("/assets/")) return serve_asset(std::string(path.substr(8)));
    if (path == "/files" || path.starts_with("/files/")) {
      return serve_file(path.size() > 7 ? path.substr(7) : std::string_view());
    }
    if (path == "/api/snapshot") {
      return reply(http::status::ok, server_.feed.snapshot().dump(), keep_alive_,
                   "application/json");
    }
    if (path == "/api/events") {
      const std::string since = query_value(target, "since");
      cursor_ = 0;
      if (!since.empty()) {
        try {
          std::size_t used = 0;
          cursor_ = std::stoull(since, &used);
          if (used != since.size()) throw std::invalid_argument(since);
        } catch (const std::exception&) {
          return reply(http::status::bad_request, "since must be a whole number", false);
        }
      }
      return start_events();
    }
    reply(http::status::not_found, "not found", keep_alive_);
  }

  void serve_asset(const std::string& name) {
    const auto asset = server_.assets.find(name);
    if (asset != server_.assets.end()) {
      return reply(http::status::ok, asset->second, keep_alive_, content_type(name));
    }
    reply(http::status::not_found, "not found", keep_alive_);
  }

  void serve_file(std::string_view path) {
    if (server_.options.files.empty()) {
      return reply(http::status::not_found, "this view serves no files", keep_alive_);
    }
    const std::string query = server_.loopback ? "" : "?token=" + server_.token;
    FileAnswer answer =
        run_file(server_.options.files, path, server_.options.max_file_bytes, query);
    reply(static_cast<http::status>(answer.status), std::move(answer.body), keep_alive_,
          answer.type, answer.headers);
  }

  void reply(http::status status, std::string body, bool keep_alive,
             const std::string& type = "text/plain; charset=utf-8",
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    auto response = std::make_shared<Response>(status, 11);
    response->set(http::field::content_type, type);
    for (const auto& [name, value] : headers) response->set(name, value);
    response->set(http::field::cache_control, "no-store");
    response->set("X-Content-Type-Options", "nosniff");
    response->keep_alive(keep_alive);
    response->body() = std::move(body);
    response->prepare_payload();
    // A file of the run takes a slow link (an SSH tunnel) longer than an update.
    stream_.expires_after(server_.options.write_timeout +
                          std::chrono::seconds(response->body().size() >> 16));
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
                        if (ec || !response->keep_alive()) return self->close();
                        self->read_request();
                      });
  }

  // Server-Sent Events: the header, then every update as it comes, until the client goes or
  // falls behind.
  void start_events() {
    server_.stream_sent_up_to(this, cursor_);
    auto header = std::make_shared<std::string>(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        "Connection: close\r\nX-Accel-Buffering: no\r\n\r\n: metaplast live view\n\n");
    write_events(header);
    // An event stream's client sends nothing more: the socket turning readable means it closed
    // (or misbehaves), so the session ends now rather than at its next write.
    stream_.socket().async_wait(tcp::socket::wait_read,
                                [self = shared_from_this()](beast::error_code) { self->close(); });
  }

  void write_events(const std::shared_ptr<std::string>& text) {
    stream_.expires_after(server_.options.write_timeout);  // a client that does not read: dropped
    asio::async_write(stream_, asio::buffer(*text),
                      [self = shared_from_this(), text](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        self->server_.stream_sent_up_to(self.get(), self->cursor_);
                        // The next updates go together, event_interval later (at once when the
                        // last write did not take all there were).
                        self->poll_after(self->more_waiting_
                                             ? std::chrono::milliseconds(0)
                                             : self->server_.options.event_interval);
                      });
  }

  void poll_after(std::chrono::milliseconds delay) {
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      self->wait_for_updates();
    });
  }

  void wait_for_updates() {
    bool behind = false;
    const auto updates = server_.feed.since(cursor_, kEventsPerWrite, behind);
    if (behind) {
      auto text = std::make_shared<std::string>("event: resync\ndata: {}\n\n");
      stream_.expires_after(server_.options.write_timeout);
      asio::async_write(
          stream_, asio::buffer(*text),
          [self = shared_from_this(), text](beast::error_code, std::size_t) { self->close(); });
      return;
    }
    if (!updates.empty()) {
      more_waiting_ = updates.size() == kEventsPerWrite;
      auto text = std::make_shared<std::string>();
      for (const auto& u : updates) {
        *text +=
            "id: " + std::to_string(u.seq) + "\nevent: " + u.kind + "\ndata: " + u.data + "\n\n";
        cursor_ = u.seq;
      }
      return write_events(text);
    }
    if (++idle_polls_ >= 150) {  // a comment every 15 s keeps proxies and tunnels open
      idle_polls_ = 0;
      return write_events(std::make_shared<std::string>(": ping\n\n"));
    }
    poll_after(std::chrono::milliseconds(100));
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    server_.stream_gone(this);
    beast::error_code ec;
    timer_.cancel();
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  LiveServer::Impl& server_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string peer_;
  bool keep_alive_ = false;
  bool closed_ = false;
  std::uint64_t cursor_ = 0;
  int idle_polls_ = 0;
  bool more_waiting_ = false;
  static constexpr std::size_t kEventsPerWrite = 512;
};

}  // namespace

void LiveServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (connections.load() >= options.max_connections) {
        // Over the limit: a short 503, then close, without a session.
        static const std::string busy =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: "
            "22\r\nConnection: close\r\n\r\ntoo many connections\r\n";
        beast::error_code ignored;
        asio::write(socket, asio::buffer(busy), ignored);
        socket.shutdown(tcp::socket::shutdown_both, ignored);
      } else {
        std::make_shared<Session>(std::move(socket), *this)->start();
      }
    }
    accept();
  });
}

LiveServer::LiveServer(LiveFeed& feed, ServerOptions options,
                       std::function<void(const std::string&)> on_stop)
    : impl_(std::make_unique<Impl>(feed, std::move(options), std::move(on_stop))) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.listen, ec);
  if (ec) {
    throw std::invalid_argument("--listen " + impl_->options.listen +
                                ": not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1)");
  }
  impl_->loopback = address.is_loopback();
  const tcp::endpoint endpoint(address, impl_->options.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("live view: cannot listen on " + impl_->options.listen + ":" +
                             std::to_string(impl_->options.port) + ": " + ec.message() +
                             " (another port: --live=PORT)");
  }
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

LiveServer::~LiveServer() {
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

unsigned short LiveServer::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string LiveServer::url() const {
  std::string host = impl_->options.listen;
  if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port()) + "/?token=" + impl_->token;
}

const std::string& LiveServer::token() const { return impl_->token; }

bool LiveServer::token_required() const { return !impl_->loopback; }

std::size_t LiveServer::open_connections() const { return impl_->connections.load(); }

bool LiveServer::wait_delivered(std::uint64_t seq, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      const std::lock_guard lock(impl_->streams_mutex);
      bool all = true;
      for (const auto& [stream, sent] : impl_->stream_sent) all = all && sent >= seq;
      if (all) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace metaplast::live
