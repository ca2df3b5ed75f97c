#include "connection_registry.hpp"

namespace parley::kernel {

namespace {

// The connections a call touched under the registry's mutex. Declared
// before the lock, it releases them after the unlock: dropping the last
// reference destroys the connection, whose destructor calls remove(), which
// takes the mutex again.
class Keep {
 public:
  std::shared_ptr<Connection> add(const std::weak_ptr<Connection>& weak) {
    auto strong = weak.lock();
    if (strong) held_.push_back(strong);
    return strong;
  }

 private:
  std::vector<std::shared_ptr<Connection>> held_;
};

}  // namespace

void ConnectionRegistry::add(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex_);
  connections_[connection->id()].connection = connection;
}

void ConnectionRegistry::unbind_locked(Entry& entry, ConnectionId id) {
  if (entry.user_id.empty()) return;
  if (auto it = users_.find(entry.user_id); it != users_.end()) {
    it->second.erase(id);
    if (it->second.empty()) users_.erase(it);
  }
  entry.user_id.clear();
  entry.holding = false;
  entry.held.clear();
}

std::string ConnectionRegistry::remove(ConnectionId id) {
  std::lock_guard lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return {};
  std::string user = it->second.user_id;
  unbind_locked(it->second, id);
  connections_.erase(it);
  return user;
}

void ConnectionRegistry::send(ConnectionId id, const Frame& frame) {
  std::shared_ptr<Connection> target;
  {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    target = it->second.connection.lock();
  }
  if (target) target->send(frame.text);
}

void ConnectionRegistry::deliver(std::string_view user_id, const Frame& frame,
                                 ConnectionId except) {
  // Sending under the lock keeps a delivery from overtaking a concurrent
  // release_events(); Connection::send only queues.
  Keep keep;
  std::lock_guard lock(mutex_);
  auto users = users_.find(std::string(user_id));
  if (users == users_.end()) return;
  for (ConnectionId id : users->second) {
    if (id == except) continue;
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    if (it->second.holding) {
      if (it->second.held.size() >= max_held_) {
        if (auto connection = keep.add(it->second.connection)) connection->disconnect();
        continue;
      }
      it->second.held.push_back(frame);
    } else if (auto connection = keep.add(it->second.connection)) {
      connection->send(frame.text);
    }
  }
}

bool ConnectionRegistry::is_connected(std::string_view user_id) const {
  std::lock_guard lock(mutex_);
  return users_.contains(std::string(user_id));
}

void ConnectionRegistry::bind_user(ConnectionId id, std::string user_id, bool hold_events) {
  Keep keep;
  std::lock_guard lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  unbind_locked(it->second, id);
  users_[user_id].insert(id);
  it->second.user_id = user_id;
  it->second.holding = hold_events;
  if (auto connection = keep.add(it->second.connection)) connection->set_user(std::move(user_id));
}

void ConnectionRegistry::release_events(ConnectionId id, std::vector<Frame> first) {
  Keep keep;
  std::lock_guard lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Entry& entry = it->second;
  auto connection = keep.add(entry.connection);
  std::unordered_set<std::string> sent_keys;
  for (const Frame& frame : first) {
    if (!frame.dedupe_key.empty()) sent_keys.insert(frame.dedupe_key);
    if (connection) connection->send(frame.text);
  }
  for (const Frame& frame : entry.held) {
    if (!frame.dedupe_key.empty() && sent_keys.contains(frame.dedupe_key)) continue;
    if (connection) connection->send(frame.text);
  }
  entry.held.clear();
  entry.holding = false;
}

std::string ConnectionRegistry::unbind_user(ConnectionId id) {
  Keep keep;
  std::lock_guard lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return {};
  std::string user = it->second.user_id;
  unbind_locked(it->second, id);
  if (auto connection = keep.add(it->second.connection)) connection->set_user({});
  return user;
}

void ConnectionRegistry::for_each(const std::function<void(Connection&)>& visit) {
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, entry] : connections_) {
      if (auto c = entry.connection.lock()) all.push_back(std::move(c));
    }
  }
  for (auto& c : all) visit(*c);
}

std::size_t ConnectionRegistry::connection_count() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

}  // namespace parley::kernel
