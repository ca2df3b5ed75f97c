// A WebSocket client for tests: connects to a real parleyd, sends frames,
// and collects what the server sends on a background thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

namespace parley::test {

using namespace std::chrono_literals;

class WsClient {
 public:
  struct Options {
    bool tls = false;
    // Receive buffer size for the socket (0: system default); small values
    // let a test fill the server's queue quickly.
    int receive_buffer = 0;
    std::string target = "/ws";  // the upgrade request's path and query
    // Extra header lines of the upgrade request, in order (a name may repeat).
    std::vector<std::pair<std::string, std::string>> headers = {};
  };

  WsClient(int port, Options options);
  explicit WsClient(int port) : WsClient(port, Options{}) {}
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  void send_text(const std::string& text);
  void send_binary(const std::string& data);
  void send(const boost::json::object& request) { send_text(boost::json::serialize(request)); }

  // The next frame from the server, or nullopt after `timeout`.
  std::optional<boost::json::object> receive(std::chrono::milliseconds timeout = 5s);
  // Sends a request with a fresh id and returns its reply; events that
  // arrive meanwhile are kept for next_event().
  boost::json::object request(boost::json::object request, std::chrono::milliseconds timeout = 10s);
  // The next event (a frame without "re") of `type`, skipping other events;
  // nullopt after `timeout`.
  std::optional<boost::json::object> next_event(const std::string& type,
                                                std::chrono::milliseconds timeout = 5s);
  // Whether an event of `type` arrives within `timeout` (it is consumed).
  bool no_event(const std::string& type, std::chrono::milliseconds timeout = 300ms);

  // Stops reading from the socket (the server's queue for us grows).
  void pause_reading();
  void resume_reading();
  // Whether the connection is closed, waiting up to `timeout`; the close code
  // the server sent, if any.
  bool wait_closed(std::chrono::milliseconds timeout = 5s);
  std::optional<int> close_code() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GET http://127.0.0.1:port/target; returns status and body (status 0 when
// the connection failed).
struct HttpResult {
  int status = 0;
  std::string body;
};
HttpResult http_get(int port, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers = {});

}  // namespace parley::test
