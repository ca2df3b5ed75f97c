// presence_last_active: the stored copy of each user's last_active.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <parley/database.hpp>

#include "presence_state.hpp"

namespace parley::presence {

using StoredValues = std::vector<std::pair<std::string, std::optional<TimePoint>>>;

class LastActiveStore {
 public:
  explicit LastActiveStore(Database& db) : db_(db) {}

  // The stored value of each user (nullopt for a user never seen), then
  // `done` on a pool thread.
  void load(std::vector<std::string> user_ids,
            std::function<void(const Status&, StoredValues)> done);
  // One upsert of all `values`; a stored newer value is kept.
  void save(std::vector<std::pair<std::string, TimePoint>> values,
            std::function<void(const Status&)> done);

 private:
  Database& db_;
};

}  // namespace parley::presence
