// Who watches whom: subscriptions per connection, indexed by the watched
// user so that a change reaches only that user's subscribers. No I/O.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <parley/gateway.hpp>

namespace parley::presence {

struct Watch {
  ConnectionId connection = 0;
  std::string subscriber;
  std::string target;
};

class Subscriptions {
 public:
  explicit Subscriptions(std::size_t per_connection_cap) : cap_(per_connection_cap) {}

  // Adds the targets not yet watched by `connection`. False, and nothing
  // added, when the connection would then hold more than the cap. A
  // connection now logged in as someone else first loses what it had.
  bool add(ConnectionId connection, const std::string& subscriber,
           const std::vector<std::string>& targets);
  void remove(ConnectionId connection, const std::vector<std::string>& targets);
  void drop_connection(ConnectionId connection);
  // The connection's watches, if `subscriber` made them.
  void drop_connection_of(ConnectionId connection, const std::string& subscriber);
  // Every connection of `subscriber` (they have none left).
  void drop_subscriber(const std::string& subscriber);

  // The connections watching `target` (empty when none).
  const std::unordered_set<ConnectionId>& watchers(const std::string& target) const;
  // The watches between `user` and anyone of `others`, either direction.
  std::vector<Watch> between(const std::string& user,
                             const std::unordered_set<std::string>& others) const;
  std::size_t size() const { return size_; }

 private:
  struct Connection {
    std::string subscriber;
    std::unordered_set<std::string> targets;
  };
  void unwatch(ConnectionId connection, const std::string& target);

  std::size_t cap_;
  std::size_t size_ = 0;
  std::unordered_map<ConnectionId, Connection> connections_;
  std::unordered_map<std::string, std::unordered_set<ConnectionId>> by_target_;
  std::unordered_map<std::string, std::unordered_set<ConnectionId>> by_subscriber_;
};

}  // namespace parley::presence
