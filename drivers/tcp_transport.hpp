// TCP through Boost.Asio (resolve, connect with timeout, bind/listen/accept); waits for data use
// poll() on the socket with the deadline, so reads and writes never block past it.
// Client address: tcp:HOST:PORT?connect_timeout_ms=2000 (1..600000 ms). TCP_NODELAY is set: the
// board protocol is request/response with small frames, where Nagle's delay would dominate.
// The server side (TcpListener) is for the simulated board's process: still pure bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "drivers/address.hpp"
#include "drivers/transport.hpp"

namespace metaplast::drivers {

class TcpTransport final : public Transport {
 public:
  // Connects (trying every resolved endpoint) within `connect_timeout`. Throws TransportError
  // saying host, port and why (refused, timed out, unresolvable).
  static std::unique_ptr<TcpTransport> connect(
      const std::string& host, std::uint16_t port,
      std::chrono::milliseconds connect_timeout = std::chrono::milliseconds{2000});
  // From a parsed tcp: address (key connect_timeout_ms). Throws AddressError / TransportError.
  static std::unique_ptr<TcpTransport> open(const Address& address);
  // Checks a tcp: address without connecting. Throws AddressError.
  static void check(const Address& address);
  ~TcpTransport() override;

  struct Impl;  // Asio objects; public only so the .cpp's helpers can build one
  TcpTransport(std::string address, std::unique_ptr<Impl> impl);

 protected:
  IoResult do_write(std::span<const std::uint8_t> bytes, Deadline deadline) override;
  IoResult do_read(std::span<std::uint8_t> buffer, Deadline deadline) override;
  void do_flush() override;
  void do_close() override;
  void do_interrupt() override;

 private:
  std::unique_ptr<Impl> impl_;
};

// Listens for TCP connections. Binds 127.0.0.1 unless told otherwise (the simulated board is
// not meant to be reachable from the network by accident).
class TcpListener {
 public:
  // Binds and listens; port 0 picks a free ephemeral port (see port()). Throws TransportError
  // (address in use, bad host, ...).
  explicit TcpListener(const std::string& host = "127.0.0.1", std::uint16_t port = 0);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  std::uint16_t port() const;  // the actual bound port
  const std::string& host() const { return host_; }
  std::string address() const;  // what a client passes to make_transport: "tcp:HOST:PORT"

  // Waits for one connection until the deadline. Returns the connected transport, or nullptr on
  // timeout or after close(). Throws TransportError on an accept failure other than those.
  std::unique_ptr<Transport> accept(Deadline deadline);

  // Stops listening; wakes a blocked accept() on another thread (which returns nullptr).
  void close();

 private:
  struct Impl;
  std::string host_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace metaplast::drivers
