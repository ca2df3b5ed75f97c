// The plugin's own thread: runs posted tasks one at a time, and calls
// `on_wake` after each batch and whenever `next_wake` (a time on the SDK
// clock) comes. Everything the plugin keeps in memory is touched only here,
// so it needs no lock.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <parley/clock.hpp>

namespace parley::presence {

class Loop {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  explicit Loop(const Clock& clock) : clock_(clock) {}
  ~Loop() { stop(); }

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

}  // namespace parley::presence
