// Counts attempts per key (a source address, or an account at an address)
// in fixed windows, so that registrations and failed logins can be capped
// without a database write. Keys expire with their window; memory follows
// the number of distinct keys seen in one window.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace parley::session {

class AttemptLimiter {
 public:
  using Time = std::chrono::system_clock::time_point;

  AttemptLimiter(std::int64_t max_attempts, std::chrono::seconds window)
      : max_attempts_(max_attempts), window_(window) {}

  // Whether `key` has used up its attempts in the current window.
  bool exhausted(const std::string& key, Time now) {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(key);
    return it != counts_.end() && now - it->second.window_start < window_ &&
           it->second.count >= max_attempts_;
  }

  // Counts one attempt of `key`.
  void record(const std::string& key, Time now) {
    std::lock_guard lock(mutex_);
    if (++records_ % 1024 == 0) prune(now);
    auto& entry = counts_[key];
    if (now - entry.window_start >= window_) entry = Entry{now, 0};
    ++entry.count;
  }

 private:
  struct Entry {
    Time window_start{};
    std::int64_t count = 0;
  };

  void prune(Time now) {
    std::erase_if(counts_, [&](const auto& kv) { return now - kv.second.window_start >= window_; });
  }

  const std::int64_t max_attempts_;
  const std::chrono::seconds window_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> counts_;
  std::uint64_t records_ = 0;
};

}  // namespace parley::session
