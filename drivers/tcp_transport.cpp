// <utility> before Asio: Boost 1.74 Asio under C++20 with GCC 12 misses std::exchange otherwise.
#include <utility>
// clang-format off
#include "drivers/tcp_transport.hpp"
// clang-format on

#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "drivers/detail/fd_wait.hpp"

namespace metaplast::drivers {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace {

bool is_link_loss(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::error::not_connected || ec == asio::error::shut_down ||
         ec == asio::error::timed_out || ec == asio::error::network_down ||
         ec == asio::error::network_unreachable || ec == asio::error::host_unreachable;
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

}  // namespace

struct TcpTransport::Impl {
  asio::io_context io;
  tcp::socket socket{io};
  int wake_fd = -1;

  ~Impl() { detail::close_fd(wake_fd); }

  // Non-blocking mode and no Nagle delay; called once the socket is connected.
  void prepare() {
    socket.non_blocking(true);
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    wake_fd = detail::make_wake_fd();
  }
};

TcpTransport::TcpTransport(std::string address, std::unique_ptr<Impl> impl)
    : Transport(std::move(address)), impl_(std::move(impl)) {}

TcpTransport::~TcpTransport() { close(); }

std::unique_ptr<TcpTransport> TcpTransport::connect(const std::string& host, std::uint16_t port,
                                                    std::chrono::milliseconds connect_timeout) {
  auto impl = std::make_unique<Impl>();
  const std::string where = host + ":" + std::to_string(port);
  tcp::resolver resolver(impl->io);
  boost::system::error_code result = asio::error::would_block;
  bool resolved = false;
  resolver.async_resolve(
      host, std::to_string(port),
      [&](const boost::system::error_code& ec, tcp::resolver::results_type ends) {
        resolved = true;
        if (ec) {
          result = ec;
          return;
        }
        asio::async_connect(
            impl->socket, ends,
            [&](const boost::system::error_code& cec, const tcp::endpoint&) { result = cec; });
      });
  impl->io.run_for(connect_timeout);
  if (result == asio::error::would_block) {
    // Timed out: cancel, then let the cancelled handlers run before the objects go away.
    resolver.cancel();
    boost::system::error_code ignored;
    impl->socket.close(ignored);
    impl->io.restart();
    impl->io.run();
    throw TransportError("cannot connect to tcp:" + where + ": " +
                         (resolved ? "no answer" : "host name not resolved") + " within " +
                         std::to_string(connect_timeout.count()) +
                         " ms (is the board or metaplast-simboard listening there?)");
  }
  if (result) {
    throw TransportError("cannot connect to tcp:" + where + ": " + result.message() +
                         (result == asio::error::connection_refused
                              ? " (nothing listens on that port: is the board or "
                                "metaplast-simboard running?)"
                              : ""));
  }
  impl->prepare();
  return std::make_unique<TcpTransport>("tcp:" + where, std::move(impl));
}

void TcpTransport::check(const Address& address) {
  address.expect_only({"connect_timeout_ms"});
  split_host_port(address);
  address.get_int("connect_timeout_ms", 2000, 1, 600'000);
}

std::unique_ptr<TcpTransport> TcpTransport::open(const Address& address) {
  check(address);
  const auto [host, port] = split_host_port(address);
  const auto timeout_ms = address.get_int("connect_timeout_ms", 2000, 1, 600'000);
  return connect(host, port, std::chrono::milliseconds{timeout_ms});
}

IoResult TcpTransport::do_write(std::span<const std::uint8_t> bytes, Deadline deadline) {
  while (true) {
    boost::system::error_code ec;
    // Asio sends with MSG_NOSIGNAL on Linux: a dead peer gives EPIPE, not SIGPIPE.
    const std::size_t n = impl_->socket.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
    if (!ec) return {IoStatus::ok, n, {}};
    if (is_link_loss(ec))
      return {IoStatus::closed, 0, address() + ": connection lost (" + ec.message() + ")"};
    if (ec != asio::error::would_block && ec != asio::error::try_again) {
      return {IoStatus::error, 0, address() + ": write failed: " + ec.message()};
    }
    bool ignored_hangup = false;  // the next write reports the error
    if (auto result = detail::wait_for_io(impl_->socket.native_handle(), POLLOUT, impl_->wake_fd,
                                          deadline, address(), &ignored_hangup)) {
      return *result;
    }
  }
}

IoResult TcpTransport::do_read(std::span<std::uint8_t> buffer, Deadline deadline) {
  while (true) {
    boost::system::error_code ec;
    const std::size_t n = impl_->socket.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
    if (!ec) return {IoStatus::ok, n, {}};
    if (is_link_loss(ec)) {
      return {IoStatus::closed, 0,
              address() + (ec == asio::error::eof ? ": peer closed the connection"
                                                  : ": connection lost (" + ec.message() + ")")};
    }
    if (ec != asio::error::would_block && ec != asio::error::try_again) {
      return {IoStatus::error, 0, address() + ": read failed: " + ec.message()};
    }
    bool ignored_hangup = false;  // the next read returns the data left, then EOF/reset
    if (auto result = detail::wait_for_io(impl_->socket.native_handle(), POLLIN, impl_->wake_fd,
                                          deadline, address(), &ignored_hangup)) {
      return *result;
    }
  }
}

void TcpTransport::do_flush() {
  std::uint8_t scratch[4096];
  while (true) {
    boost::system::error_code ec;
    const std::size_t n = impl_->socket.read_some(asio::buffer(scratch), ec);
    if (ec || n == 0) return;  // would_block: drained; EOF/errors: left for the next read
  }
}

void TcpTransport::do_interrupt() { detail::signal_wake_fd(impl_->wake_fd); }

void TcpTransport::do_close() {
  boost::system::error_code ignored;
  impl_->socket.shutdown(tcp::socket::shutdown_both, ignored);
  impl_->socket.close(ignored);
  detail::close_fd(impl_->wake_fd);
}

// --- server side ---------------------------------------------------------------------------

struct TcpListener::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  int wake_fd = -1;
  std::mutex accept_mutex;
  std::atomic<bool> closed{false};
  ~Impl() { detail::close_fd(wake_fd); }
};

TcpListener::TcpListener(const std::string& host, std::uint16_t port)
    : host_(host), impl_(std::make_unique<Impl>()) {
  const std::string where = host + ":" + std::to_string(port);
  boost::system::error_code ec;
  tcp::resolver resolver(impl_->io);
  const auto endpoints = resolver.resolve(
      host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    throw TransportError("cannot listen on tcp:" + where + ": cannot resolve host (" +
                         (ec ? ec.message() : std::string("no address")) + ")");
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  auto& acceptor = impl_->acceptor;
  if (acceptor.open(endpoint.protocol(), ec) ||
      acceptor.set_option(tcp::acceptor::reuse_address(true), ec) || acceptor.bind(endpoint, ec) ||
      acceptor.listen(asio::socket_base::max_listen_connections, ec) ||
      acceptor.non_blocking(true, ec)) {
    throw TransportError("cannot listen on tcp:" + where + ": " + ec.message() +
                         (ec == asio::error::address_in_use ? " (choose another port, or 0)" : ""));
  }
  impl_->wake_fd = detail::make_wake_fd();
}

TcpListener::~TcpListener() { close(); }

std::uint16_t TcpListener::port() const {
  boost::system::error_code ec;
  const auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

std::string TcpListener::address() const {
  const bool v6 = host_.find(':') != std::string::npos;
  return "tcp:" + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port());
}

std::unique_ptr<Transport> TcpListener::accept(Deadline deadline) {
  std::lock_guard lock(impl_->accept_mutex);
  while (!impl_->closed.load()) {
    auto peer = std::make_unique<TcpTransport::Impl>();
    boost::system::error_code ec;
    impl_->acceptor.accept(peer->socket, ec);
    if (!ec) {
      const std::string remote = endpoint_text(peer->socket.remote_endpoint(ec));
      peer->prepare();
      return std::make_unique<TcpTransport>("tcp:" + remote, std::move(peer));
    }
    if (ec == asio::error::connection_aborted || ec == asio::error::interrupted) continue;
    if (ec != asio::error::would_block && ec != asio::error::try_again) {
      if (impl_->closed.load()) return nullptr;
      throw TransportError("accept on " + address() + " failed: " + ec.message());
    }
    int err = 0;
    switch (
        detail::wait_fd(impl_->acceptor.native_handle(), POLLIN, impl_->wake_fd, deadline, &err)) {
      case detail::FdReady::ready:
      case detail::FdReady::hangup:
        continue;
      case detail::FdReady::timeout:
      case detail::FdReady::interrupted:
        return nullptr;
      case detail::FdReady::error:
        throw TransportError(
            detail::errno_message("accept on " + address() + ": poll failed", err));
    }
  }
  return nullptr;
}

void TcpListener::close() {
  if (impl_->closed.exchange(true)) return;
  detail::signal_wake_fd(impl_->wake_fd);
  std::lock_guard lock(impl_->accept_mutex);  // wait for a blocked accept() to leave
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace metaplast::drivers
