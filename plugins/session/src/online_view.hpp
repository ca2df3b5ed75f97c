// Who is online, as the presence plugin last said: kept from its
// `presence.changed` events so that deciding a push costs no bus round trip
// per recipient. Without a presence plugin, online means connected.
#pragma once

#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_set>

#include <parley/sdk.hpp>

namespace parley::session {

class OnlineView {
 public:
  // Subscribes to presence.changed: construct in start().
  explicit OnlineView(Host& host);

  // Thread-safe.
  bool online(std::string_view user_id) const;

 private:
  Host& host_;
  mutable std::shared_mutex mutex_;
  std::unordered_set<std::string> online_;
};

}  // namespace parley::session
