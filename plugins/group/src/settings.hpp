// The group plugin's configuration (its block in parley.yaml).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace parley::group {

struct Settings {
  // The most members a group may have, the owner included.
  std::int64_t max_members = 256;
  // The longest group name, in Unicode code points.
  std::size_t max_name_length = 100;
  // The most groups a user may be a current member of, created or added:
  // what one user's group.list, login catch-up and group events can grow to.
  std::int64_t max_groups_per_user = 1000;
  // The group.create requests one user may make per hour.
  std::int64_t creates_per_user_per_hour = 30;
  // How long to wait for session.contacts when checking that members exist.
  std::chrono::milliseconds contacts_timeout{2000};
};

}  // namespace parley::group
