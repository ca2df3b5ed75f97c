// Which connections are open and which user each one is logged in as; the
// kernel side of Gateway::deliver, bind_user and release_events, and the
// source of the user online/offline/active events.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/clock.hpp"
#include "parley/gateway.hpp"

namespace parley::kernel {

class EventBus;

// When one user was last active on this node, shared by all of their
// connections so that recording a frame is two atomic operations.
class UserActivity {
 public:
  UserActivity(std::string user_id, const Clock& clock, std::chrono::milliseconds interval,
               EventBus& bus)
      : user_id_(std::move(user_id)), clock_(clock), interval_ms_(interval.count()), bus_(bus) {}

  // Records a frame; publishes gateway.user.active when the last one was
  // published at least the configured interval ago.
  void touch();
  // Publishes gateway.user.active now (a login).
  void publish_now();
  std::chrono::system_clock::time_point last_active() const {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(last_active_ms_.load()));
  }

 private:
  void publish(std::int64_t now_ms);

  const std::string user_id_;
  const Clock& clock_;
  const std::int64_t interval_ms_;
  EventBus& bus_;
  std::atomic<std::int64_t> last_active_ms_{0};
  std::atomic<std::int64_t> last_published_ms_{0};
};

// One client connection, as the registry sees it.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual ConnectionId id() const = 0;
  // Queues a frame, never held back; thread-safe; frames queued from one
  // thread keep their order.
  virtual void send(std::shared_ptr<const std::string> text) = 0;
  // Queues the reply to one of its requests (see the gateway's enqueue).
  virtual void send_reply(std::shared_ptr<const std::string> text) = 0;
  // Queues a frame addressed to this connection; during a catch-up its
  // dedupe key is remembered, so that release() does not repeat it.
  virtual void send_frame(const Frame& frame) = 0;
  // Queues a frame for the logged-in user, or holds it during a catch-up.
  virtual void deliver(const Frame& frame) = 0;
  // Runs `callback` on a worker once what is queued now has been written.
  virtual void when_written(std::function<void()> callback) = 0;
  // Logged in (`activity` set) or out (nullptr); with `hold`, deliveries are
  // held until release().
  virtual void set_user(std::string user_id, std::shared_ptr<UserActivity> activity, bool hold) = 0;
  // Sends `first`, then the held frames whose dedupe key `first` lacks.
  virtual void release(std::vector<Frame> first) = 0;
  // Says goodbye (close 1001) after what is queued: the server is stopping.
  virtual void close_going_away() = 0;
  // Drops the connection at once (it cannot keep up).
  virtual void disconnect() = 0;
};

class ConnectionRegistry {
 public:
  ConnectionRegistry(EventBus& bus, const Clock& clock, std::chrono::milliseconds activity_interval)
      : bus_(bus), clock_(clock), activity_interval_(activity_interval) {}

  void add(const std::shared_ptr<Connection>& connection);
  // Forgets the connection; returns the user it was logged in as (empty when none).
  std::string remove(ConnectionId id);

  void send(ConnectionId id, const Frame& frame);
  void when_written(ConnectionId id, std::function<void()> callback);
  void deliver(std::span<const std::string> user_ids, const Frame& frame, ConnectionId except);
  bool is_connected(std::string_view user_id) const;
  std::optional<std::chrono::system_clock::time_point> last_active(std::string_view user_id) const;
  void bind_user(ConnectionId id, Binding binding);
  void release_events(ConnectionId id, std::vector<Frame> first);
  // Returns the user it was logged in as.
  std::string unbind_user(ConnectionId id);
  std::size_t end_login(std::string_view login_key, const Frame& notice);
  std::string user_of(ConnectionId id) const;

  void for_each(const std::function<void(Connection&)>& visit);
  std::size_t connection_count() const;

 private:
  struct ConnectionEntry {
    std::weak_ptr<Connection> connection;
    std::string user_id;
    std::string login_key;
  };
  struct UserEntry {
    std::vector<std::pair<ConnectionId, std::weak_ptr<Connection>>> connections;
    std::shared_ptr<UserActivity> activity;
  };
  // Users are spread over shards by hash so that deliveries to different
  // users rarely wait for each other; a shard's lock is never held while a
  // connection queues a frame.
  struct UserShard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, UserEntry> users;
  };
  static constexpr std::size_t kShards = 16;

  UserShard& shard_of(std::string_view user_id) const;
  // Takes `id` out of `user_id`'s entry; publishes offline when it was the last.
  void detach(const std::string& user_id, ConnectionId id);
  // Publishes that the open connection `id` is no longer logged in as `user_id`.
  void publish_unbound(ConnectionId id, const std::string& user_id);

  EventBus& bus_;
  const Clock& clock_;
  const std::chrono::milliseconds activity_interval_;

  mutable std::mutex connections_mutex_;  // guards connections_ only
  std::unordered_map<ConnectionId, ConnectionEntry> connections_;
  mutable std::array<UserShard, kShards> shards_;
};

}  // namespace parley::kernel
