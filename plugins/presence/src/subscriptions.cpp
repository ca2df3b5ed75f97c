#include "subscriptions.hpp"

namespace parley::presence {

bool Subscriptions::add(ConnectionId connection, const std::string& subscriber,
                        const std::vector<std::string>& targets) {
  auto found = connections_.find(connection);
  if (found != connections_.end() && found->second.subscriber != subscriber) {
    drop_connection(connection);
    found = connections_.end();
  }
  std::size_t held = found == connections_.end() ? 0 : found->second.targets.size();
  std::unordered_set<std::string> fresh;
  for (const auto& target : targets) {
    if (found != connections_.end() && found->second.targets.contains(target)) continue;
    fresh.insert(target);
  }
  if (held + fresh.size() > cap_) return false;
  if (fresh.empty()) return true;

  auto& entry = connections_[connection];
  entry.subscriber = subscriber;
  by_subscriber_[subscriber].insert(connection);
  for (const auto& target : fresh) {
    entry.targets.insert(target);
    by_target_[target].insert(connection);
  }
  size_ += fresh.size();
  return true;
}

void Subscriptions::remove(ConnectionId connection, const std::vector<std::string>& targets) {
  for (const auto& target : targets) unwatch(connection, target);
}

void Subscriptions::drop_connection(ConnectionId connection) {
  const auto found = connections_.find(connection);
  if (found == connections_.end()) return;
  for (const auto& target : found->second.targets) {
    auto watchers = by_target_.find(target);
    watchers->second.erase(connection);
    if (watchers->second.empty()) by_target_.erase(watchers);
  }
  size_ -= found->second.targets.size();
  auto mine = by_subscriber_.find(found->second.subscriber);
  mine->second.erase(connection);
  if (mine->second.empty()) by_subscriber_.erase(mine);
  connections_.erase(found);
}

void Subscriptions::drop_connection_of(ConnectionId connection, const std::string& subscriber) {
  const auto found = connections_.find(connection);
  if (found != connections_.end() && found->second.subscriber == subscriber) {
    drop_connection(connection);
  }
}

void Subscriptions::drop_subscriber(const std::string& subscriber) {
  const auto found = by_subscriber_.find(subscriber);
  if (found == by_subscriber_.end()) return;
  const std::vector<ConnectionId> connections(found->second.begin(), found->second.end());
  for (const auto connection : connections) drop_connection(connection);
}

const std::unordered_set<ConnectionId>& Subscriptions::watchers(const std::string& target) const {
  static const std::unordered_set<ConnectionId> none;
  const auto found = by_target_.find(target);
  return found == by_target_.end() ? none : found->second;
}

std::vector<Watch> Subscriptions::between(const std::string& user,
                                          const std::unordered_set<std::string>& others) const {
  std::vector<Watch> watches;
  if (const auto mine = by_subscriber_.find(user); mine != by_subscriber_.end()) {
    for (const auto connection : mine->second) {
      for (const auto& target : connections_.at(connection).targets) {
        if (others.contains(target)) watches.push_back({connection, user, target});
      }
    }
  }
  for (const auto connection : watchers(user)) {
    const auto& subscriber = connections_.at(connection).subscriber;
    if (others.contains(subscriber)) watches.push_back({connection, subscriber, user});
  }
  return watches;
}

void Subscriptions::unwatch(ConnectionId connection, const std::string& target) {
  const auto found = connections_.find(connection);
  if (found == connections_.end() || found->second.targets.erase(target) == 0) return;
  --size_;
  auto watchers = by_target_.find(target);
  watchers->second.erase(connection);
  if (watchers->second.empty()) by_target_.erase(watchers);
  if (found->second.targets.empty()) {
    auto mine = by_subscriber_.find(found->second.subscriber);
    mine->second.erase(connection);
    if (mine->second.empty()) by_subscriber_.erase(mine);
    connections_.erase(found);
  }
}

}  // namespace parley::presence
