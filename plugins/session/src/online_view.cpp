#include "online_view.hpp"

namespace parley::session {

OnlineView::OnlineView(Host& host) : host_(host) {
  // presence publishes from one thread and the handlers of one subscription
  // run in publish order, so the last event for a user is the current state.
  host_.bus().subscribe("presence.changed", [this](const Event& event) {
    const auto* payload = event.payload.if_object();
    if (payload == nullptr) return;
    const auto* user = payload->if_contains("user_id");
    const auto* online = payload->if_contains("online");
    if (user == nullptr || !user->is_string() || online == nullptr || !online->is_bool()) return;
    std::unique_lock lock(mutex_);
    if (online->get_bool()) {
      online_.emplace(user->get_string());
    } else {
      online_.erase(std::string(user->get_string()));
    }
  });
}

bool OnlineView::online(std::string_view user_id) const {
  // presence.online is how a presence plugin announces itself.
  if (!host_.bus().has_service("presence.online")) return host_.gateway().is_connected(user_id);
  std::shared_lock lock(mutex_);
  return online_.contains(std::string(user_id));
}

}  // namespace parley::session
