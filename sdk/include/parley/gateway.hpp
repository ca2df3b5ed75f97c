// The WebSocket gateway as plugins see it: request routing and delivery to
// users' connections. The kernel knows connections and an opaque user id per
// logged-in connection; what a request or event means is up to plugins.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "parley/status.hpp"

namespace parley {

using ConnectionId = std::uint64_t;

// One server-to-client frame, serialised once and shared by every connection
// it is sent to. `dedupe_key` (optional) identifies the event for
// Gateway::release_events.
struct Frame {
  std::shared_ptr<const std::string> text;
  std::string dedupe_key;
};

inline Frame make_frame(const boost::json::object& event, std::string dedupe_key = {}) {
  return {std::make_shared<const std::string>(boost::json::serialize(event)),
          std::move(dedupe_key)};
}

// A client request routed to the plugin that registered its type. `fields` is
// the whole request object (including "type" and "id").
struct Request {
  std::string type;
  boost::json::object fields;
  ConnectionId connection = 0;
  std::string user_id;  // empty before login
  // The client's IP address: the peer's, or the last address a trusted
  // proxy (server.trusted_proxies) added to X-Forwarded-For.
  std::string remote_address;
};

// Answers one client request, from any thread. The first answer counts; if
// every copy is destroyed without one, the client gets `internal` and the
// kernel logs the plugin that forgot.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void answer(Status status, boost::json::object result) = 0;
};
class Reply {
 public:
  explicit Reply(std::shared_ptr<ReplySink> sink) : sink_(std::move(sink)) {}
  void ok(boost::json::object result = {}) const { sink_->answer(Status(), std::move(result)); }
  void error(ErrorCode code, std::string message) const {
    sink_->answer(Status(code, std::move(message)), {});
  }
  void fail(const Status& status) const { sink_->answer(status, {}); }

 private:
  std::shared_ptr<ReplySink> sink_;
};

// Runs on a worker thread (or, for RequestOptions::nonblocking handlers, on
// the connection's network thread). It may answer later, from any thread.
// Requests of one connection take effect in the order they arrived: a
// handler runs only once every earlier request of its connection has been
// answered (see RequestOptions::pipelined for the exception).
// Throwing parley::Failure answers with its code; any other exception
// answers `internal` and is logged.
using RequestHandler = std::function<void(Request request, Reply reply)>;

struct RequestOptions {
  // Accept the request on a connection that has not logged in.
  bool before_login = false;
  // The handler never blocks: it validates, queues work (Database::run,
  // Bus::request, ...) and returns within microseconds. The kernel then runs
  // it on the connection's network thread, saving a hand-off to a worker
  // per request. Anything slower (hashing a password, a blocking call)
  // must leave this false.
  bool nonblocking = false;
  // A request of this type may start while earlier requests of the same
  // type from the same connection are still unanswered: the handler keeps
  // their order itself (it hands them, in call order, to one FIFO such as a
  // write batcher). Any other request still waits for every earlier one.
  bool pipelined = false;
};

// How a connection is logged in (Gateway::bind_user).
struct Binding {
  std::string user_id;
  // Frames delivered to the connection are held back until
  // release_events(), so that a login can send its catch-up first.
  bool hold_events = false;
  // Groups the connections of one login session (a token) so that
  // end_login() can end all of them; empty for none.
  std::string login_key;
};

class Gateway {
 public:
  virtual ~Gateway() = default;

  // Routes requests of `type` to `handler`. Two plugins registering one type
  // is a start-up error naming both. Call from start().
  virtual void handle(std::string type, RequestHandler handler, RequestOptions options = {}) = 0;

  // Sends to one connection (dropped if it closed). Not held back during a
  // login catch-up: this is how a catch-up is sent, page by page.
  virtual void send(ConnectionId connection, Frame frame) = 0;
  // Runs `callback` on a worker thread once everything queued on
  // `connection` so far has been written to its socket (at once when its
  // queue is empty); never, if the connection closes first. Lets a plugin
  // send a large backlog page by page as the client reads it, instead of
  // queuing it all and cutting off a client that reads at its own pace.
  virtual void when_written(ConnectionId connection, std::function<void()> callback) = 0;
  // Sends to every logged-in connection of `user_id` except `except`.
  virtual void deliver(std::string_view user_id, const Frame& frame, ConnectionId except = 0) = 0;
  // Sends one frame to every logged-in connection of each of `user_ids`
  // (except `except`); the frame is shared, not copied, and no lock is held
  // while connections queue it. Duplicate ids receive it once.
  virtual void deliver_many(std::span<const std::string> user_ids, const Frame& frame,
                            ConnectionId except = 0) = 0;
  // Whether `user_id` has at least one logged-in connection on this server.
  virtual bool is_connected(std::string_view user_id) const = 0;
  // When `user_id` last sent a frame on a connection of this server, while
  // logged in; nullopt when they hold no connection here.
  virtual std::optional<std::chrono::system_clock::time_point> last_active(
      std::string_view user_id) const = 0;

  // Marks `connection` as logged in (see Binding). The kernel publishes
  // gateway.user.online when it is the user's first connection here.
  virtual void bind_user(ConnectionId connection, Binding binding) = 0;
  // Sends `first`, then the held frames whose dedupe key is neither among
  // the keys of `first` nor among those of the frames send() sent to it
  // while holding (what the catch-up already contained), and stops holding.
  virtual void release_events(ConnectionId connection, std::vector<Frame> first) = 0;
  // Logs the connection out: it receives no more deliveries.
  virtual void unbind_user(ConnectionId connection) = 0;
  // Logs out every connection bound with `login_key` (a revoked session),
  // then queues `notice` on each; returns how many there were.
  virtual std::size_t end_login(std::string_view login_key, const Frame& notice) = 0;

  // SDK 2.2: the user `connection` is logged in as; empty when it is not
  // logged in or has closed. A plugin that keeps per-connection state for
  // a user checks it before storing any (gateway.connection.unbound
  // removes what was stored before the logout).
  virtual std::string user_of(ConnectionId connection) const = 0;
};

}  // namespace parley
