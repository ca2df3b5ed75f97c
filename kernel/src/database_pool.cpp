#include "database_pool.hpp"

#include <algorithm>
#include <chrono>
#include <set>

#include "thread_names.hpp"

namespace parley::kernel {

namespace {
// Past this many queued jobs new work is refused with `unavailable` instead
// of letting memory grow while the database cannot keep up.
constexpr std::size_t kMaxQueuedJobs = 100000;

// libpq's connect_timeout, added to the configured URL or key=value string.
std::string with_connect_timeout(const std::string& url, std::chrono::seconds timeout) {
  const std::string parameter = "connect_timeout=" + std::to_string(timeout.count());
  if (url.find("connect_timeout") != std::string::npos) return url;
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + parameter;
  }
  return url + " " + parameter;
}
}  // namespace

DatabasePool::DatabasePool(DatabaseConfig config, MetricsRegistry& metrics,
                           std::shared_ptr<spdlog::logger> log)
    : config_(std::move(config)),
      log_(std::move(log)),
      in_use_(metrics.gauge("parley_db_connections_in_use", "Database connections running work")),
      queued_(metrics.gauge("parley_db_queued_jobs", "Database jobs waiting for a connection")),
      failures_(metrics.counter(
          "parley_db_unavailable_total",
          "Database jobs answered unavailable (unreachable, lost mid-commit, or overloaded)")),
      timeouts_(metrics.counter("parley_db_timeouts_total",
                                "Database jobs answered unavailable after query_timeout_ms")) {
  metrics.gauge("parley_db_pool_size", "Database connections in the pool").set(config_.pool_size);
}

DatabasePool::~DatabasePool() {
  stop();
}

std::unique_ptr<pqxx::connection> DatabasePool::connect() {
  auto conn = std::make_unique<pqxx::connection>(
      with_connect_timeout(config_.url, config_.connect_timeout));
  // A statement still running at query_timeout_ms has been answered
  // `unavailable` by the watchdog; PostgreSQL then cancels it too, so that
  // a job stuck behind a lock ends (and frees its connection) instead of
  // waiting as long as the lock is held. Migrations use their own
  // connection and have no such bound.
  {
    pqxx::nontransaction tx(*conn);
    tx.exec("SET statement_timeout = " + std::to_string(config_.query_timeout.count()));
  }
  return conn;
}

void DatabasePool::start() {
  try {
    auto probe = connect();
    available_ = true;
  } catch (const std::exception& e) {
    log_->warn("database not reachable yet: {}", e.what());
  }
  running_.resize(static_cast<std::size_t>(config_.pool_size));
  for (int i = 0; i < config_.pool_size; ++i) {
    workers_.emplace_back([this, i] {
      name_this_thread("parley-db");
      worker_loop(static_cast<std::size_t>(i));
    });
  }
  health_ = std::thread([this] {
    name_this_thread("parley-db-check");
    health_loop();
  });
  watchdog_ = std::thread([this] {
    name_this_thread("parley-db-watch");
    watchdog_loop();
  });
}

void DatabasePool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  health_wake_.notify_all();
  watchdog_wake_.notify_all();
  for (auto& t : workers_) t.join();
  if (health_.joinable()) health_.join();
  if (watchdog_.joinable()) watchdog_.join();
  workers_.clear();
}

void DatabasePool::run(const OwnerPtr& owner, std::function<void(pqxx::connection&)> work,
                       std::function<void(const Status&)> done) {
  auto completion = std::make_shared<Completion>();
  completion->owner = owner;
  completion->done = std::move(done);
  Job job{std::move(work), completion, Clock::now()};
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < kMaxQueuedJobs) {
      queue_.push_back(std::move(job));
      queued_.set(static_cast<double>(queue_.size()));
      wake_.notify_one();
      return;
    }
  }
  failures_.add();
  finish(*completion,
         Status(ErrorCode::unavailable, "the database is overloaded or shutting down"));
}

void DatabasePool::finish(Completion& completion, const Status& status) {
  if (completion.answered.exchange(true)) return;  // the watchdog answered already
  try {
    completion.done(status);
  } catch (const std::exception& e) {
    log_->error("plugin '{}': database callback threw: {}", completion.owner->name, e.what());
  } catch (...) {
    log_->error("plugin '{}': database callback threw", completion.owner->name);
  }
}

void DatabasePool::watchdog_loop() {
  const auto timeout = config_.query_timeout;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    watchdog_wake_.wait_for(lock, std::max(timeout / 10, std::chrono::milliseconds(10)),
                            [&] { return stopping_; });
    if (stopping_) break;
    const auto now = Clock::now();
    std::vector<std::shared_ptr<Completion>> late;
    while (!queue_.empty() && now - queue_.front().queued_at > timeout) {
      late.push_back(queue_.front().completion);
      queue_.pop_front();
    }
    queued_.set(static_cast<double>(queue_.size()));
    for (auto& slot : running_) {
      if (slot.completion && !slot.abandoned && now - slot.started > timeout) {
        slot.abandoned = true;
        late.push_back(slot.completion);
      }
    }
    const bool probe_stuck = probe_started_ && now - *probe_started_ > timeout;
    if (late.empty() && !probe_stuck) continue;
    if (available_.exchange(false)) {
      log_->warn("the database did not answer within {} ms: marked unavailable",
                 config_.query_timeout.count());
    }
    lock.unlock();
    for (auto& completion : late) {
      failures_.add();
      timeouts_.add();
      finish(*completion, Status(ErrorCode::unavailable, "the database did not answer in time"));
    }
    lock.lock();
  }
}

void DatabasePool::worker_loop(std::size_t index) {
  std::unique_ptr<pqxx::connection> conn;
  while (true) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to do
      job = std::move(queue_.front());
      queue_.pop_front();
      queued_.set(static_cast<double>(queue_.size()));
      running_[index] = Running{job.completion, Clock::now(), false};
    }
    // A connection can look open and still be dead (the server restarted):
    // such a failure happens before anything committed, so the job is run
    // once more on a fresh connection.
    Status status;
    for (int attempt = 1; attempt <= 2; ++attempt) {
      if (!conn || !conn->is_open()) {
        conn.reset();
        try {
          conn = connect();
          available_ = true;
        } catch (const std::exception&) {
          status = Status(ErrorCode::unavailable, "the database is unavailable");
          break;
        }
      }
      bool retryable = false;
      status = run_job(job, *conn, retryable);
      if (!retryable) break;
      conn.reset();
    }
    {
      std::lock_guard lock(mutex_);
      // A job the watchdog gave up on leaves its connection in doubt.
      if (running_[index].abandoned) conn.reset();
      running_[index] = Running{};
    }
    if (status.code() == ErrorCode::unavailable) {
      available_ = false;
      failures_.add();
    }
    finish(*job.completion, status);
  }
}

Status DatabasePool::run_job(Job& job, pqxx::connection& conn, bool& retryable) {
  in_use_.add(1);
  Status status;
  retryable = false;
  try {
    job.work(conn);
  } catch (const pqxx::in_doubt_error&) {
    // The connection broke during COMMIT: running the job again could apply it twice.
    status = Status(ErrorCode::unavailable, "the database went away during a commit; retry");
  } catch (const pqxx::broken_connection&) {
    status = Status(ErrorCode::unavailable, "the database is unavailable");
    retryable = true;
  } catch (const Failure& f) {
    status = Status(f.code(), f.what());
  } catch (const std::exception& e) {
    const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
    if (sql != nullptr && sql->sqlstate() == "57014") {
      // statement_timeout (see connect): the watchdog's answer, when this
      // comes first.
      status = Status(ErrorCode::unavailable, "the database did not answer in time");
    } else if (!conn.is_open()) {
      status = Status(ErrorCode::unavailable, "the database is unavailable");
      retryable = true;
    } else {
      log_->error("plugin '{}': database work failed: {}", job.completion->owner->name, e.what());
      status = Status(ErrorCode::internal, "database error");
    }
  } catch (...) {
    log_->error("plugin '{}': database work threw something that is not a std::exception",
                job.completion->owner->name);
    status = Status(ErrorCode::internal, "database error");
  }
  in_use_.add(-1);
  return status;
}

void DatabasePool::health_loop() {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    probe_started_ = Clock::now();  // the watchdog times the probe
    lock.unlock();
    bool ok = false;
    try {
      if (!conn || !conn->is_open()) conn = connect();
      pqxx::nontransaction tx(*conn);
      tx.exec("SELECT 1");
      ok = true;
    } catch (const std::exception& e) {
      conn.reset();
      if (available_.load()) log_->warn("database unreachable: {}", e.what());
    }
    if (ok && !available_.load()) log_->info("database reachable");
    available_ = ok;
    lock.lock();
    probe_started_.reset();
    health_wake_.wait_for(lock, config_.reconnect_interval, [&] { return stopping_; });
  }
}

void DatabasePool::migrate(const std::string& component, std::span<const Migration> migrations) {
  std::vector<Migration> ordered(migrations.begin(), migrations.end());
  std::sort(ordered.begin(), ordered.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  // A version is applied once: of two files sharing one, the second would
  // fail on the first start and be skipped, unnoticed, on every later one.
  const auto twin =
      std::adjacent_find(ordered.begin(), ordered.end(),
                         [](const auto& a, const auto& b) { return a.version == b.version; });
  if (twin != ordered.end()) {
    throw std::runtime_error("migrations " + std::string(twin->name) + " and " +
                             std::string(std::next(twin)->name) + " of " + component +
                             " share version " + std::to_string(twin->version) +
                             ": give each file its own number");
  }

  pqxx::connection conn(with_connect_timeout(config_.url, config_.connect_timeout));
  auto exec = [&conn](const std::string& sql) {
    pqxx::nontransaction tx(conn);
    tx.exec(sql);
  };
  // One session-level lock for all of Parley's migrations: servers starting
  // together apply each step once, one after another.
  const std::string lock_id = "7061723100";  // arbitrary, fixed
  exec("SELECT pg_advisory_lock(" + lock_id + ")");
  try {
    exec(
        "CREATE TABLE IF NOT EXISTS parley_migrations ("
        " component text NOT NULL, version integer NOT NULL, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))");
    std::set<int> applied;
    {
      pqxx::nontransaction tx(conn);
      for (const auto& row : tx.exec_params(
               "SELECT version FROM parley_migrations WHERE component = $1", component)) {
        applied.insert(row[0].as<int>());
      }
    }
    for (const auto& m : ordered) {
      if (applied.contains(m.version)) continue;
      try {
        pqxx::work tx(conn);
        tx.exec(m.sql);
        tx.exec_params(
            "INSERT INTO parley_migrations (component, version, name) VALUES ($1, $2, $3)",
            component, m.version, std::string(m.name));
        tx.commit();
        log_->info("{}: applied migration {}", component, m.name);
      } catch (const std::exception& e) {
        throw std::runtime_error("migration " + std::string(m.name) + " of " + component +
                                 " failed: " + e.what());
      }
    }
  } catch (...) {
    try {
      exec("SELECT pg_advisory_unlock(" + lock_id + ")");
    } catch (...) {
      // The lock ends with the connection anyway.
    }
    throw;
  }
  exec("SELECT pg_advisory_unlock(" + lock_id + ")");
}

}  // namespace parley::kernel
