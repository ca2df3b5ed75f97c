// The PostgreSQL store. The kernel owns a pool of connections; plugins never
// open their own. Work runs on the pool's threads, never on network threads.
#pragma once

#include <functional>
#include <span>
#include <string_view>

#include <pqxx/pqxx>

#include "parley/status.hpp"

namespace parley {

// One schema step a plugin ships (see parley_add_plugin's MIGRATIONS). Applied
// once, in version order, recorded in parley_migrations with the plugin name.
struct Migration {
  int version;
  const char* name;
  const char* sql;
};

class Database {
 public:
  virtual ~Database() = default;

  // Runs `work` on a pool thread with a live connection, then `done` on the
  // same thread: ok, `unavailable` when the database cannot be reached (the
  // pool reconnects by itself later), a parley::Failure's own code when
  // `work` threw one, or `internal` when it threw anything else. Past
  // database.query_timeout_ms, `done` gets `unavailable` on the watchdog
  // thread while `work` may still run and even commit: share what both
  // touch through a shared_ptr, and read what `work` fills in only when the
  // status is ok (docs/plugins.md, section 5.6).
  // `work` owns its transaction (pqxx::work tx(conn)). When a connection
  // turns out dead before anything committed, `work` runs again on a fresh
  // one: reset what it fills in at its start. A job refused outright (the
  // pool is stopping or 100,000 jobs are queued) gets `unavailable` at once,
  // on the calling thread: do not hold a lock `done` takes.
  virtual void run(std::function<void(pqxx::connection& conn)> work,
                   std::function<void(const Status& status)> done) = 0;

  // Applies this plugin's pending migrations, in order, each in its own
  // transaction, under an advisory lock so concurrent servers do not race.
  // Blocking; call from start(). Throws on failure.
  virtual void migrate(std::span<const Migration> migrations) = 0;

  // Whether the last attempt to reach the database succeeded.
  virtual bool available() const = 0;
};

}  // namespace parley
