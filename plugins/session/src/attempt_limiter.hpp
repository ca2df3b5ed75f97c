// Counts attempts per key (a source address, an account, or an account at an
// address) in fixed windows, so that registrations, logins and lookups can be
// capped without a database write. Keys expire with their window; memory
// follows the number of distinct keys seen in one window.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace parley::session {

class AttemptLimiter {
 public:
  using Time = std::chrono::system_clock::time_point;

  AttemptLimiter(std::int64_t max_attempts, std::chrono::seconds window)
      : max_attempts_(max_attempts), window_(window) {}

  // Counts one attempt of `key` unless it has used up its attempts: checking
  // and counting at once, so that attempts running in parallel cannot all
  // pass a check that none of them has counted against yet.
  bool try_record(const std::string& key, Time now) {
    std::lock_guard lock(mutex_);
    if (++records_ % 1024 == 0) prune(now);
    auto& entry = counts_[key];
    if (now - entry.window_start >= window_) entry = Entry{now, 0};
    if (entry.count >= max_attempts_) return false;
    ++entry.count;
    return true;
  }

  // Takes back an attempt that try_record() counted at `recorded_at` (it
  // turned out not to count, e.g. a login that succeeded); nothing if its
  // window has ended since.
  void release(const std::string& key, Time recorded_at) {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(key);
    if (it == counts_.end() || it->second.window_start > recorded_at ||
        recorded_at - it->second.window_start >= window_ || it->second.count == 0) {
      return;
    }
    --it->second.count;
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

// Counts what runs at once per key (password hashes of one address or one
// account, queued or running), so that one key cannot take the whole shared
// hashing queue. A slot is held by a Slot and given back when it is destroyed.
class InFlightLimiter {
 public:
  class Slot {
   public:
    Slot(InFlightLimiter& limiter, std::string key) : limiter_(limiter), key_(std::move(key)) {}
    ~Slot() { limiter_.give_back(key_); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    InFlightLimiter& limiter_;
    std::string key_;
  };

  explicit InFlightLimiter(std::int64_t max_per_key) : max_per_key_(max_per_key) {}

  // A slot for `key`, or null when `key` already holds max_per_key of them.
  // Shared, so that it can travel in a copyable task and be given back
  // whether the task runs or is dropped.
  std::shared_ptr<Slot> try_acquire(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto& count = counts_[key];
    if (count >= max_per_key_) return nullptr;
    ++count;
    return std::make_shared<Slot>(*this, key);
  }

 private:
  void give_back(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(key);
    if (it != counts_.end() && --it->second <= 0) counts_.erase(it);
  }

  const std::int64_t max_per_key_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::int64_t> counts_;
};

// The key a client address is limited by: an IPv6 address stands for its
// /64 (one subscriber's network: a single host may use any address in it),
// but for a NAT64 one; anything else (IPv4, text that is not an address) is
// its own key.
inline std::string address_limit_key(std::string_view address) {
  if (address.find(':') == std::string_view::npos) return std::string(address);
  const std::string text(address);
  unsigned char bytes[16];
  if (inet_pton(AF_INET6, text.c_str(), bytes) != 1) return text;
  // NAT64 (64:ff9b::/96, 64:ff9b:1::/48): one IPv4 client per address, as
  // the kernel's address_group() counts them.
  if (bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b) return text;
  for (std::size_t i = 8; i < sizeof bytes; ++i) bytes[i] = 0;
  char out[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, bytes, out, sizeof out) == nullptr) return text;
  return std::string(out) + "/64";
}

}  // namespace parley::session
