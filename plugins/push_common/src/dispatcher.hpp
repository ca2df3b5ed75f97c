// What both push plugins share around their platform's HTTP protocol: they
// serve push.platform.<p>, take push.offer.<p> events into a bounded queue
// (one push per device token), send them on the HttpLoop through the
// Platform, retry with exponential backoff and jitter, report dead tokens on
// push.token.invalid, and count every outcome by reason in /metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <parley/sdk.hpp>

#include "http_loop.hpp"

namespace parley::push {

// One notification for one device token.
struct Push {
  std::string user_id;
  std::string token;
  std::string title;
  std::string body;
  std::int64_t badge = 0;
  std::string conversation;
  std::string message_id;
  std::string group_id;  // empty for 1:1 messages
  int attempts = 0;      // sends made so far
  // When it was queued: retries end retry_window after it.
  std::chrono::steady_clock::time_point queued_at;
  // The platform renewed its credentials for this push once already.
  bool renewed_credentials = false;
};

struct Outcome {
  enum class Kind { sent, retry, token_invalid, failed };
  Kind kind = Kind::sent;
  // For metrics and logs: [a-z0-9_] ("unregistered", "bad_device_token").
  std::string reason;
  // Server's Retry-After: the retry waits at least this long.
  std::optional<std::chrono::milliseconds> retry_after;
  std::string detail;  // for the log (the service's error body)

  static Outcome sent() { return {}; }
  static Outcome retry(std::string reason, std::optional<std::chrono::milliseconds> after = {},
                       std::string detail = {}) {
    return {Kind::retry, std::move(reason), after, std::move(detail)};
  }
  static Outcome token_invalid(std::string reason) {
    return {Kind::token_invalid, std::move(reason), std::nullopt, {}};
  }
  static Outcome failed(std::string reason, std::string detail = {}) {
    return {Kind::failed, std::move(reason), std::nullopt, std::move(detail)};
  }
};

// The service-specific part. Runs on the loop thread only.
class Platform {
 public:
  virtual ~Platform() = default;
  // Sends `push` once (or waits for credentials first) and calls `done`
  // exactly once, on the loop thread.
  virtual void attempt(const std::shared_ptr<Push>& push, std::function<void(Outcome)> done) = 0;
};

// Lets one log line of a kind through per interval and counts the ones held
// back in between: a provider outage or a project misconfiguration fails
// every push alike, and thousands of identical lines would bury the cause.
// The metrics still count every push. One thread only.
class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::steady_clock::duration interval = std::chrono::minutes(1))
      : interval_(interval) {}
  // Null: hold this line back. Otherwise log it: the value is how many lines
  // of `kind` were held back since the last one let through.
  std::optional<std::size_t> admit(const std::string& kind);

 private:
  struct Kind {
    std::chrono::steady_clock::time_point last;
    std::size_t held = 0;
  };
  std::chrono::steady_clock::duration interval_;
  std::map<std::string, Kind> kinds_;
};

struct DispatcherOptions {
  std::string platform;             // "fcm", "apns"
  std::size_t max_pending = 10000;  // pushes queued, in flight or waiting to retry
  // A push is given up when either runs out. The window is what bounds an
  // outage: with 1 s doubling to 60 s, five minutes are about ten sends.
  int max_attempts = 20;
  std::chrono::milliseconds retry_window{300000};
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_max{60000};

  // Reads queue_size, max_attempts, retry_window_ms, backoff_base_ms and
  // backoff_max_ms from the config block of the push plugin of `platform`.
  static DispatcherOptions from_config(Config& config, std::string platform);
};

class Dispatcher {
 public:
  Dispatcher(Host& host, HttpLoop& loop, Platform& platform, DispatcherOptions options);

  // Starts the loop, then serves push.platform.<p> and subscribes to
  // push.offer.<p>. Call from the plugin's start(); if it throws, the loop
  // is stopped again (the kernel does not stop a plugin whose start() threw).
  void start(Bus& bus);
  // Stops the loop. Pushes still queued, in flight or waiting for a retry
  // are dropped: counted in dropped_at_stop_total and logged in one line.
  // Call from the plugin's stop(), after the kernel removed the
  // subscription.
  void stop();

 private:
  void on_offer(const Event& event);
  void admit(std::shared_ptr<Push> push);
  void attempt(const std::shared_ptr<Push>& push);                  // loop thread
  void handle(const std::shared_ptr<Push>& push, Outcome outcome);  // loop thread
  void finished();
  Counter& reason_counter(const std::string& prefix, const std::string& reason);

  Host& host_;
  HttpLoop& loop_;
  Platform& platform_;
  DispatcherOptions options_;
  std::atomic<std::size_t> pending_{0};
  std::atomic<bool> overflowing_{false};
  std::mt19937_64 random_{std::random_device{}()};  // loop thread
  Counter& offers_;
  Counter& sent_;
  Counter& dropped_;
  Counter& dropped_at_stop_;
  Counter& retries_;
  Gauge& pending_gauge_;
  std::map<std::string, Counter*> by_reason_;  // loop thread
  LogThrottle failure_log_;                    // loop thread
};

// The wait before retry number `attempt` (1 = the first retry): exponential
// from `base`, capped at `cap`, half of it random ("equal jitter", so pushes
// that failed together spread out), and never less than `floor` (the
// server's Retry-After).
std::chrono::milliseconds retry_delay(int attempt, std::chrono::milliseconds base,
                                      std::chrono::milliseconds cap,
                                      std::optional<std::chrono::milliseconds> floor,
                                      std::mt19937_64& random);

// `text` cut to at most `max_bytes` without splitting a UTF-8 sequence, with
// "…" at the end when something was cut.
std::string truncate_utf8(std::string_view text, std::size_t max_bytes);

// Both services refuse larger payloads: APNs 4096 bytes for the JSON
// payload, FCM 4096 bytes for a message's keys and values.
constexpr std::size_t kMaxPayloadBytes = 4096;

// `build(body)`, with `body` shortened by whole UTF-8 code points (and "…"
// after the cut) until the result is at most `max_bytes` long. A body of
// 1024 bytes can serialize six times as long (a control character becomes
// \u00XX); the longest prefix that fits is kept. When not even an empty
// body fits, the payload with an empty body is returned.
std::string fit_payload(std::string_view body, std::size_t max_bytes,
                        const std::function<std::string(const std::string& body)>& build);

// "BadDeviceToken" -> "bad_device_token", "QUOTA_EXCEEDED" -> "quota_exceeded":
// a service's error name as a metric name part.
std::string snake_case(std::string_view name);

}  // namespace parley::push
