// Counts group.create requests per user in fixed windows of an hour, so that
// one account cannot mint groups (each one an event and a system message to
// everyone it names) as fast as it can send. Keys expire with their window;
// memory follows the number of users who created a group in the last hour.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace parley::group {

class CreateLimiter {
 public:
  using Time = std::chrono::system_clock::time_point;

  CreateLimiter(std::int64_t per_window, std::chrono::seconds window)
      : per_window_(per_window), window_(window) {}

  // Counts one request of `user`; false when the user's window was already
  // used up (that request is not counted).
  bool take(std::int64_t user, Time now) {
    std::lock_guard lock(mutex_);
    if (++takes_ % 1024 == 0) prune(now);
    auto& entry = counts_[user];
    if (now - entry.window_start >= window_) entry = Entry{now, 0};
    if (entry.count >= per_window_) return false;
    ++entry.count;
    return true;
  }

 private:
  struct Entry {
    Time window_start{};
    std::int64_t count = 0;
  };

  void prune(Time now) {
    std::erase_if(counts_, [&](const auto& kv) { return now - kv.second.window_start >= window_; });
  }

  const std::int64_t per_window_;
  const std::chrono::seconds window_;
  std::mutex mutex_;
  std::unordered_map<std::int64_t, Entry> counts_;
  std::uint64_t takes_ = 0;
};

}  // namespace parley::group
