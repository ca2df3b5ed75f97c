#include "connection_registry.hpp"

#include <algorithm>

#include "event_bus.hpp"
#include "parley/names.hpp"
#include "parley/timestamp.hpp"

namespace parley::kernel {

namespace json = boost::json;

void UserActivity::touch() {
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch())
          .count();
  last_active_ms_.store(now_ms, std::memory_order_relaxed);
  std::int64_t published = last_published_ms_.load(std::memory_order_relaxed);
  if (now_ms - published < interval_ms_) return;
  // One connection of the user wins the right to publish for this interval.
  if (last_published_ms_.compare_exchange_strong(published, now_ms)) publish(now_ms);
}

void UserActivity::publish_now() {
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch())
          .count();
  last_active_ms_.store(now_ms);
  last_published_ms_.store(now_ms);
  publish(now_ms);
}

void UserActivity::publish(std::int64_t now_ms) {
  bus_.publish(std::string(names::kUserActive),
               json::object{{"user_id", user_id_},
                            {"at", format_timestamp(std::chrono::system_clock::time_point(
                                       std::chrono::milliseconds(now_ms)))}});
}

ConnectionRegistry::UserShard& ConnectionRegistry::shard_of(std::string_view user_id) const {
  return shards_[std::hash<std::string_view>{}(user_id) % kShards];
}

void ConnectionRegistry::add(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(connections_mutex_);
  connections_[connection->id()].connection = connection;
}

void ConnectionRegistry::detach(const std::string& user_id, ConnectionId id) {
  auto& shard = shard_of(user_id);
  std::lock_guard lock(shard.mutex);
  auto it = shard.users.find(user_id);
  if (it == shard.users.end()) return;
  auto& list = it->second.connections;
  std::erase_if(list, [id](const auto& c) { return c.first == id; });
  if (!list.empty()) return;
  shard.users.erase(it);
  // Published under the shard's lock so that a user's online and offline
  // events are published in the order they happened.
  bus_.publish(std::string(names::kUserOffline), json::object{{"user_id", user_id}});
}

std::string ConnectionRegistry::remove(ConnectionId id) {
  std::lock_guard lock(connections_mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return {};
  std::string user = std::move(it->second.user_id);
  connections_.erase(it);
  if (!user.empty()) detach(user, id);
  return user;
}

void ConnectionRegistry::send(ConnectionId id, const Frame& frame) {
  std::shared_ptr<Connection> target;
  {
    std::lock_guard lock(connections_mutex_);
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    target = it->second.connection.lock();
  }
  if (target) target->send_frame(frame);
}

void ConnectionRegistry::when_written(ConnectionId id, std::function<void()> callback) {
  std::shared_ptr<Connection> target;
  {
    std::lock_guard lock(connections_mutex_);
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    target = it->second.connection.lock();
  }
  if (target) target->when_written(std::move(callback));
}

void ConnectionRegistry::deliver(std::span<const std::string> user_ids, const Frame& frame,
                                 ConnectionId except) {
  // Collected under each shard's lock, sent after it: a slow connection's
  // queue never delays deliveries to other users.
  std::vector<std::shared_ptr<Connection>> targets;
  targets.reserve(user_ids.size());
  for (const std::string& user_id : user_ids) {
    auto& shard = shard_of(user_id);
    std::lock_guard lock(shard.mutex);
    auto it = shard.users.find(user_id);
    if (it == shard.users.end()) continue;
    for (const auto& [id, weak] : it->second.connections) {
      if (id == except) continue;
      if (auto connection = weak.lock()) targets.push_back(std::move(connection));
    }
  }
  if (user_ids.size() > 1) {
    // A user named twice still gets the frame once per connection.
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  }
  for (const auto& connection : targets) connection->deliver(frame);
}

bool ConnectionRegistry::is_connected(std::string_view user_id) const {
  auto& shard = shard_of(user_id);
  std::lock_guard lock(shard.mutex);
  return shard.users.contains(std::string(user_id));
}

std::optional<std::chrono::system_clock::time_point> ConnectionRegistry::last_active(
    std::string_view user_id) const {
  auto& shard = shard_of(user_id);
  std::lock_guard lock(shard.mutex);
  auto it = shard.users.find(std::string(user_id));
  if (it == shard.users.end()) return std::nullopt;
  return it->second.activity->last_active();
}

void ConnectionRegistry::bind_user(ConnectionId id, Binding binding) {
  std::shared_ptr<Connection> connection;  // released after the locks
  std::lock_guard lock(connections_mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;  // closed during its login
  connection = it->second.connection.lock();
  if (!connection) return;
  if (!it->second.user_id.empty()) {
    detach(it->second.user_id, id);
    connection->set_user({}, nullptr, false);
    // Bound again as the same user, what plugins keep for it stays valid.
    if (it->second.user_id != binding.user_id) publish_unbound(id, it->second.user_id);
  }
  it->second.user_id = binding.user_id;
  it->second.login_key = binding.login_key;

  auto& shard = shard_of(binding.user_id);
  std::lock_guard shard_lock(shard.mutex);
  auto& user = shard.users[binding.user_id];
  const bool first = user.connections.empty();
  if (!user.activity) {
    user.activity =
        std::make_shared<UserActivity>(binding.user_id, clock_, activity_interval_, bus_);
  }
  // Holding starts before the connection can be reached through the shard.
  connection->set_user(binding.user_id, user.activity, binding.hold_events);
  user.connections.emplace_back(id, connection);
  if (first) {
    bus_.publish(std::string(names::kUserOnline), json::object{{"user_id", binding.user_id}});
  }
  user.activity->publish_now();
}

void ConnectionRegistry::release_events(ConnectionId id, std::vector<Frame> first) {
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(connections_mutex_);
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    connection = it->second.connection.lock();
  }
  if (connection) connection->release(std::move(first));
}

std::string ConnectionRegistry::unbind_user(ConnectionId id) {
  std::shared_ptr<Connection> connection;
  std::lock_guard lock(connections_mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return {};
  std::string user = std::move(it->second.user_id);
  it->second.user_id.clear();
  it->second.login_key.clear();
  if (user.empty()) return user;
  detach(user, id);
  connection = it->second.connection.lock();
  if (connection) connection->set_user({}, nullptr, false);
  publish_unbound(id, user);
  return user;
}

std::string ConnectionRegistry::user_of(ConnectionId id) const {
  std::lock_guard lock(connections_mutex_);
  const auto it = connections_.find(id);
  return it == connections_.end() ? std::string() : it->second.user_id;
}

void ConnectionRegistry::publish_unbound(ConnectionId id, const std::string& user_id) {
  bus_.publish(std::string(names::kConnectionUnbound),
               json::object{{"connection", id}, {"user_id", user_id}});
}

std::size_t ConnectionRegistry::end_login(std::string_view login_key, const Frame& notice) {
  if (login_key.empty()) return 0;
  std::vector<std::shared_ptr<Connection>> ended;
  std::lock_guard lock(connections_mutex_);
  for (auto& [id, entry] : connections_) {
    if (entry.login_key != login_key || entry.user_id.empty()) continue;
    detach(entry.user_id, id);
    publish_unbound(id, entry.user_id);
    entry.user_id.clear();
    entry.login_key.clear();
    if (auto connection = entry.connection.lock()) {
      connection->set_user({}, nullptr, false);
      connection->send(notice.text);
      ended.push_back(std::move(connection));
    }
  }
  return ended.size();
}

void ConnectionRegistry::for_each(const std::function<void(Connection&)>& visit) {
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(connections_mutex_);
    for (auto& [id, entry] : connections_) {
      if (auto c = entry.connection.lock()) all.push_back(std::move(c));
    }
  }
  for (auto& c : all) visit(*c);
}

std::size_t ConnectionRegistry::connection_count() const {
  std::lock_guard lock(connections_mutex_);
  return connections_.size();
}

}  // namespace parley::kernel
