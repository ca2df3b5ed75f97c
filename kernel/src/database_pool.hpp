// The kernel's PostgreSQL connection pool: a fixed set of threads, each with
// its own connection, taking work from one queue. A connection that breaks
// is dropped and re-opened on next use; a health thread keeps available()
// current and reconnects in the background once the database is back.
//
// A database that stops answering (a hung server, a stopped process, a lost
// network) would block libpq forever: a watchdog answers `unavailable` for
// every job that waited or ran longer than database.query_timeout_ms and
// marks the pool unavailable (/readyz 503). A job answered that way may
// still commit later, when the database wakes up; clients retry, and
// idempotent requests (send with its client_msg_id) give the first answer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "kernel_config.hpp"
#include "metrics_registry.hpp"
#include "owner.hpp"
#include "parley/database.hpp"

namespace parley::kernel {

class DatabasePool {
 public:
  DatabasePool(DatabaseConfig config, MetricsRegistry& metrics,
               std::shared_ptr<spdlog::logger> log);
  ~DatabasePool();
  DatabasePool(const DatabasePool&) = delete;
  DatabasePool& operator=(const DatabasePool&) = delete;

  void start();
  // Finishes queued work, then joins the threads.
  void stop();

  void run(const OwnerPtr& owner, std::function<void(pqxx::connection&)> work,
           std::function<void(const Status&)> done);
  void migrate(const std::string& component, std::span<const Migration> migrations);
  bool available() const { return available_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  // How a job ends: answered once, by its worker or by the watchdog.
  struct Completion {
    OwnerPtr owner;
    std::function<void(const Status&)> done;
    std::atomic<bool> answered{false};
  };
  struct Job {
    std::function<void(pqxx::connection&)> work;
    std::shared_ptr<Completion> completion;
    Clock::time_point queued_at;
  };
  // What each worker is running, for the watchdog.
  struct Running {
    std::shared_ptr<Completion> completion;  // null when idle
    Clock::time_point started;
    bool abandoned = false;  // answered by the watchdog: drop the connection after
  };

  void worker_loop(std::size_t index);
  // Runs one job; `retryable` says whether it failed before anything could commit.
  Status run_job(Job& job, pqxx::connection& conn, bool& retryable);
  void health_loop();
  void watchdog_loop();
  void finish(Completion& completion, const Status& status);
  std::unique_ptr<pqxx::connection> connect();

  DatabaseConfig config_;
  std::shared_ptr<spdlog::logger> log_;
  GaugeMetric& in_use_;
  GaugeMetric& queued_;
  CounterMetric& failures_;
  std::atomic<bool> available_{false};

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread health_;
  std::condition_variable health_wake_;
  std::vector<Running> running_;                    // one per worker, under mutex_
  std::optional<Clock::time_point> probe_started_;  // the health probe in progress
  std::thread watchdog_;
  std::condition_variable watchdog_wake_;
  CounterMetric& timeouts_;
};

// The parley::Database a plugin sees.
class PluginDatabase : public Database {
 public:
  PluginDatabase(DatabasePool& pool, OwnerPtr owner) : pool_(pool), owner_(std::move(owner)) {}
  void run(std::function<void(pqxx::connection&)> work,
           std::function<void(const Status&)> done) override {
    pool_.run(owner_, std::move(work), std::move(done));
  }
  void migrate(std::span<const Migration> migrations) override {
    pool_.migrate(owner_->name, migrations);
  }
  bool available() const override { return pool_.available(); }

 private:
  DatabasePool& pool_;
  OwnerPtr owner_;
};

}  // namespace parley::kernel
