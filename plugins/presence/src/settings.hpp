// The presence plugin's configuration (its block in parley.yaml).
#pragma once

#include <chrono>
#include <cstddef>

#include "presence_state.hpp"

namespace parley::presence {

struct Settings {
  Timing timing;
  std::chrono::milliseconds flush_interval{std::chrono::seconds(10)};
  std::size_t max_subscriptions_per_connection = 1000;
  // How long to wait for session.contacts and group.shared.
  std::chrono::milliseconds lookup_timeout{std::chrono::seconds(5)};
};

}  // namespace parley::presence
