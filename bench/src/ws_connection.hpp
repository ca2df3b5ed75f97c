// One client WebSocket connection (text frames), asynchronous, on its own
// strand of an io_context. Beast stays in ws_connection.cpp: this header is
// cheap to include.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace parley::bench {

struct WsTarget {
  boost::asio::ip::tcp::endpoint server;
  std::string host;  // Host header
  std::string path = "/ws";
  std::chrono::milliseconds connect_timeout{30000};
};

class WsConnection {
 public:
  struct Handlers {
    // A text frame arrived (called on the connection's strand; the view is
    // valid during the call only).
    std::function<void(std::string_view)> on_text;
    // The connection ended after it was open (error or close by either side).
    std::function<void(const std::string& why)> on_closed;
  };
  using Done = std::function<void(const std::string& error)>;  // empty: success

  virtual ~WsConnection() = default;

  // A connection using a new strand of `ioc`.
  static std::shared_ptr<WsConnection> create(boost::asio::io_context& ioc);

  // Binds `source` (when given; the port is chosen at connect time, so many
  // source addresses multiply the usable ports), connects, performs the
  // WebSocket handshake and starts reading. `done` runs on the strand.
  virtual void connect(const WsTarget& target, std::optional<boost::asio::ip::address> source,
                       Handlers handlers, Done done) = 0;
  // Queues a text frame; frames are written in order. Any thread.
  virtual void send(std::string text) = 0;
  // Sends a close frame (or drops the socket if not open). Any thread.
  virtual void close() = 0;
  // Runs `fn` on the connection's strand. Any thread.
  virtual void post(std::function<void()> fn) = 0;
  // Whether `fn` would run now if dispatched (we are on the strand).
  virtual bool on_strand() const = 0;
};

}  // namespace parley::bench
