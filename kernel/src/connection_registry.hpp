// Which connections are open and which user each one is logged in as; the
// kernel side of Gateway::deliver, bind_user and release_events.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "parley/gateway.hpp"

namespace parley::kernel {

// One client connection, as the registry sees it.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual ConnectionId id() const = 0;
  // Queues a frame; thread-safe; frames from one thread keep their order.
  virtual void send(std::shared_ptr<const std::string> text) = 0;
  // The user this connection is logged in as (empty when none); updated by the registry.
  virtual void set_user(std::string user_id) = 0;
  // Says goodbye (close 1001) after what is queued: the server is stopping.
  virtual void close_going_away() = 0;
  // Drops the connection at once (it cannot keep up).
  virtual void disconnect() = 0;
};

class ConnectionRegistry {
 public:
  // `max_held` bounds the events held for one connection during a login catch-up.
  explicit ConnectionRegistry(std::size_t max_held = 65536) : max_held_(max_held) {}

  void add(const std::shared_ptr<Connection>& connection);
  // Returns the user the connection was logged in as (empty when none).
  std::string remove(ConnectionId id);

  void send(ConnectionId id, const Frame& frame);
  void deliver(std::string_view user_id, const Frame& frame, ConnectionId except);
  bool is_connected(std::string_view user_id) const;
  void bind_user(ConnectionId id, std::string user_id, bool hold_events);
  void release_events(ConnectionId id, std::vector<Frame> first);
  // Returns the user it was logged in as.
  std::string unbind_user(ConnectionId id);

  void for_each(const std::function<void(Connection&)>& visit);
  std::size_t connection_count() const;

 private:
  struct Entry {
    std::weak_ptr<Connection> connection;
    std::string user_id;
    bool holding = false;
    std::vector<Frame> held;
  };

  void unbind_locked(Entry& entry, ConnectionId id);

  const std::size_t max_held_;
  mutable std::mutex mutex_;
  std::unordered_map<ConnectionId, Entry> connections_;
  std::unordered_map<std::string, std::unordered_set<ConnectionId>> users_;
};

}  // namespace parley::kernel
