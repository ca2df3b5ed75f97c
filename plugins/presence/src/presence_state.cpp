#include "presence_state.hpp"

namespace parley::presence {

std::vector<Transition> PresenceState::set_connected(const std::string& user_id, bool connected,
                                                     std::optional<TimePoint> last_active) {
  std::vector<Transition> out;
  const auto now = clock_.now();
  auto& user = users_[user_id];
  if (last_active) note_activity(user_id, user, *last_active);
  note_connected(user, connected, now);
  settle(user_id, user, now, out);
  return out;
}

std::vector<Transition> PresenceState::activity(const std::string& user_id, TimePoint at,
                                                bool connected) {
  std::vector<Transition> out;
  const auto now = clock_.now();
  auto& user = users_[user_id];
  note_activity(user_id, user, at);
  note_connected(user, connected, now);
  settle(user_id, user, now, out);
  return out;
}

std::vector<Transition> PresenceState::tick() {
  std::vector<Transition> out;
  const auto now = clock_.now();
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const std::string user_id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    auto& user = users_.at(user_id);
    user.deadline.reset();
    settle(user_id, user, now, out);
  }
  return out;
}

std::optional<TimePoint> PresenceState::next_deadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

bool PresenceState::online(const std::string& user_id) const {
  const auto it = users_.find(user_id);
  return it != users_.end() && it->second.online;
}

std::optional<TimePoint> PresenceState::last_active(const std::string& user_id) const {
  const auto it = users_.find(user_id);
  if (it == users_.end()) return std::nullopt;
  return it->second.last_active;
}

bool PresenceState::known(const std::string& user_id) const {
  const auto it = users_.find(user_id);
  return it != users_.end() && (it->second.loaded || it->second.last_active);
}

void PresenceState::load(const std::string& user_id, std::optional<TimePoint> stored) {
  auto& user = users_[user_id];
  user.loaded = true;
  if (stored && (!user.last_active || *stored > *user.last_active)) user.last_active = stored;
}

std::vector<std::pair<std::string, TimePoint>> PresenceState::take_changed() {
  std::vector<std::pair<std::string, TimePoint>> values;
  values.reserve(changed_.size());
  for (auto& user_id : changed_) {
    auto& user = users_.at(user_id);
    user.changed = false;
    values.emplace_back(std::move(user_id), *user.last_active);
  }
  changed_.clear();
  return values;
}

void PresenceState::restore_changed(const std::vector<std::pair<std::string, TimePoint>>& values) {
  for (const auto& [user_id, at] : values) {
    auto& user = users_.at(user_id);
    if (user.changed) continue;
    user.changed = true;
    changed_.push_back(user_id);
  }
}

void PresenceState::note_activity(const std::string& user_id, User& user, TimePoint at) {
  if (user.last_active && at <= *user.last_active) return;
  user.last_active = at;
  if (!user.changed) {
    user.changed = true;
    changed_.push_back(user_id);
  }
}

void PresenceState::note_connected(User& user, bool connected, TimePoint now) const {
  if (connected) {
    user.connected = true;
    user.grace_until.reset();
  } else if (user.connected) {
    user.connected = false;
    // A phone that reconnects within the grace period causes no flap.
    if (user.online) user.grace_until = now + timing_.grace;
  }
}

void PresenceState::settle(const std::string& user_id, User& user, TimePoint now,
                           std::vector<Transition>& out) {
  if (user.grace_until && now >= *user.grace_until) user.grace_until.reset();
  const bool present = user.connected || user.grace_until.has_value();
  const bool fresh = user.last_active && now < *user.last_active + timing_.offline_after;
  const bool online = present && fresh;
  if (online != user.online) {
    user.online = online;
    out.push_back({user_id, online, user.last_active});
  }

  std::optional<TimePoint> deadline;
  if (online) {
    deadline = *user.last_active + timing_.offline_after;
    if (user.grace_until && *user.grace_until < *deadline) deadline = user.grace_until;
  }
  if (deadline == user.deadline) return;
  if (user.deadline) deadlines_.erase({*user.deadline, user_id});
  user.deadline = deadline;
  if (deadline) deadlines_.emplace(*deadline, user_id);
}

}  // namespace parley::presence
