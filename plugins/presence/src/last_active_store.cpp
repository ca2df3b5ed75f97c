#include "last_active_store.hpp"

#include <memory>
#include <unordered_map>

#include <parley/sql_arrays.hpp>
#include <parley/timestamp.hpp>

namespace parley::presence {

using sql::text_array;

void LastActiveStore::load(std::vector<std::string> user_ids,
                           std::function<void(const Status&, StoredValues)> done) {
  auto found = std::make_shared<std::unordered_map<std::string, TimePoint>>();
  auto ids = std::make_shared<std::vector<std::string>>(std::move(user_ids));
  db_.run(
      [found, ids](pqxx::connection& conn) {
        found->clear();
        pqxx::read_transaction tx(conn);
        const auto rows = tx.exec_params(
            "SELECT user_id, (extract(epoch FROM last_active) * 1000)::bigint"
            " FROM presence_last_active WHERE user_id = ANY($1::text[])",
            text_array(*ids));
        for (const auto& row : rows) {
          found->emplace(row[0].as<std::string>(),
                         TimePoint(std::chrono::milliseconds(row[1].as<std::int64_t>())));
        }
      },
      [found, ids, done = std::move(done)](const Status& status) {
        StoredValues values;
        if (status.ok()) {
          values.reserve(ids->size());
          for (auto& id : *ids) {
            const auto it = found->find(id);
            values.emplace_back(std::move(id), it == found->end()
                                                   ? std::nullopt
                                                   : std::optional<TimePoint>(it->second));
          }
        }
        done(status, std::move(values));
      });
}

void LastActiveStore::save(std::vector<std::pair<std::string, TimePoint>> values,
                           std::function<void(const Status&)> done) {
  std::vector<std::string> ids;
  std::vector<std::string> times;
  ids.reserve(values.size());
  times.reserve(values.size());
  for (const auto& [id, at] : values) {
    ids.push_back(id);
    times.push_back(format_timestamp(at));
  }
  db_.run(
      [ids = text_array(ids), times = text_array(times)](pqxx::connection& conn) {
        pqxx::work tx(conn);
        tx.exec_params(
            "INSERT INTO presence_last_active (user_id, last_active)"
            " SELECT * FROM unnest($1::text[], $2::timestamptz[])"
            " ON CONFLICT (user_id) DO UPDATE"
            " SET last_active = GREATEST(presence_last_active.last_active, EXCLUDED.last_active)",
            ids, times);
        tx.commit();
      },
      std::move(done));
}

}  // namespace parley::presence
