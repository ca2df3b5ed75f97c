// A plugin's own thread, started in start() and stopped in stop(): it runs
// posted tasks one at a time, in order, and calls `on_wake` after each batch
// and whenever `next_wake` (a time on the SDK clock) comes, which makes
// repeating timers and deadlines. State touched only from tasks needs no
// lock. Header-only and compiled into the plugin, so no Asio executor or
// other type-erased object crosses the plugin boundary (RTTI across
// RTLD_LOCAL libraries breaks). A plugin that runs a client library's own
// loop (libcurl multi, a broker client) runs it on such a thread too.
//
// Unlike Host::post, nothing here catches: an exception that leaves a task,
// `on_wake` or `next_wake` ends the process (std::terminate), as on any
// std::thread. Catch and log inside them. `next_wake` runs with the loop's
// lock held: it must not call post().
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <parley/clock.hpp>

namespace parley {

class EventLoop {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  explicit EventLoop(const Clock& clock) : clock_(clock) {}
  ~EventLoop() { stop(); }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void start(std::function<std::optional<TimePoint>()> next_wake, std::function<void()> on_wake) {
    thread_ = std::thread([this, next_wake = std::move(next_wake), on_wake = std::move(on_wake)] {
      run(next_wake, on_wake);
    });
  }
  // Dropped once stop() began.
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
  }
  // Runs what was posted before, then joins.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run(const std::function<std::optional<TimePoint>()>& next_wake,
           const std::function<void()>& on_wake) {
    std::deque<std::function<void()>> batch;
    while (true) {
      {
        std::unique_lock lock(mutex_);
        const auto ready = [this] { return stopping_ || !tasks_.empty(); };
        if (const auto when = next_wake()) {
          wake_.wait_for(lock, *when - clock_.now(), ready);
        } else {
          wake_.wait(lock, ready);
        }
        batch.swap(tasks_);
        if (stopping_ && batch.empty()) return;
      }
      for (auto& task : batch) task();
      batch.clear();
      on_wake();
    }
  }

  const Clock& clock_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace parley
