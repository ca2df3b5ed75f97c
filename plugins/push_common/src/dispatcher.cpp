#include "dispatcher.hpp"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

namespace parley::push {

namespace json = boost::json;

namespace {

// A notification shows a few lines; both services refuse payloads over 4 KB.
constexpr std::size_t kMaxTitleBytes = 256;
constexpr std::size_t kMaxBodyBytes = 1024;

std::string string_field(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_string() ? std::string(value->get_string()) : std::string();
}

}  // namespace

std::chrono::milliseconds retry_delay(int attempt, std::chrono::milliseconds base,
                                      std::chrono::milliseconds cap,
                                      std::optional<std::chrono::milliseconds> floor,
                                      std::mt19937_64& random) {
  long long delay = base.count();
  for (int i = 1; i < attempt && delay < cap.count(); ++i) delay *= 2;
  delay = std::min(delay, static_cast<long long>(cap.count()));
  std::uniform_int_distribution<long long> jitter(0, delay / 2);
  delay = delay - delay / 2 + jitter(random);
  if (floor) delay = std::max(delay, static_cast<long long>(floor->count()));
  return std::chrono::milliseconds(delay);
}

std::string truncate_utf8(std::string_view text, std::size_t max_bytes) {
  static constexpr std::string_view kEllipsis = "\xE2\x80\xA6";
  if (text.size() <= max_bytes) return std::string(text);
  if (max_bytes < kEllipsis.size()) return {};
  std::size_t cut = max_bytes - kEllipsis.size();
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + std::string(kEllipsis);
}

std::string fit_payload(std::string_view body, std::size_t max_bytes,
                        const std::function<std::string(const std::string& body)>& build) {
  static constexpr std::string_view kEllipsis = "\xE2\x80\xA6";
  std::string payload = build(std::string(body));
  if (payload.size() <= max_bytes) return payload;
  std::vector<std::size_t> starts;  // where each code point starts
  for (std::size_t i = 0; i < body.size(); ++i) {
    if ((static_cast<unsigned char>(body[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  // Keeping `kept` code points (fewer than all) and the ellipsis; fewer
  // never serialize longer, so the longest that fits is a binary search.
  auto with = [&](std::size_t kept) {
    return build(std::string(body.substr(0, starts[kept])) + std::string(kEllipsis));
  };
  if (starts.empty() || with(0).size() > max_bytes) return build(std::string());
  std::size_t low = 0;
  std::size_t high = starts.size() - 1;
  while (low < high) {
    const std::size_t mid = (low + high + 1) / 2;
    if (with(mid).size() <= max_bytes) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return with(low);
}

std::string snake_case(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (std::isupper(c)) {
      const bool after_lower = i > 0 && std::islower(static_cast<unsigned char>(name[i - 1]));
      if (after_lower && !out.empty() && out.back() != '_') out += '_';
      out += static_cast<char>(std::tolower(c));
    } else if (std::islower(c) || std::isdigit(c)) {
      out += static_cast<char>(c);
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "unknown" : out;
}

std::optional<std::size_t> LogThrottle::admit(const std::string& kind) {
  const auto now = std::chrono::steady_clock::now();
  auto [it, first] = kinds_.try_emplace(kind);
  auto& state = it->second;
  if (!first && now - state.last < interval_) {
    ++state.held;
    return std::nullopt;
  }
  state.last = now;
  return std::exchange(state.held, 0);
}

Dispatcher::Dispatcher(Host& host, HttpLoop& loop, Platform& platform, DispatcherOptions options)
    : host_(host),
      loop_(loop),
      platform_(platform),
      options_(std::move(options)),
      offers_(host.metrics().counter("offers_total", "push.offer events received")),
      sent_(host.metrics().counter("sent_total", "Pushes the service accepted")),
      dropped_(host.metrics().counter("dropped_queue_full_total",
                                      "Pushes dropped because the queue was full")),
      dropped_at_stop_(host.metrics().counter(
          "dropped_at_stop_total",
          "Pushes queued, in flight or waiting for a retry when the plugin stopped")),
      retries_(host.metrics().counter("retries_total", "Pushes sent again after a failure")),
      pending_gauge_(host.metrics().gauge("queue_pending",
                                          "Pushes queued, in flight or waiting for a retry")) {}

void Dispatcher::start(Bus& bus) {
  loop_.start();
  try {
    bus.serve("push.platform." + options_.platform,
              [](const json::value&, ServiceReply reply) { reply.ok(json::object{}); });
    bus.subscribe("push.offer." + options_.platform,
                  [this](const Event& event) { on_offer(event); });
  } catch (...) {
    loop_.stop();
    throw;
  }
}

void Dispatcher::stop() {
  loop_.stop();
  // The loop thread is gone: nothing finishes a push any more.
  const std::size_t dropped = pending_.exchange(0);
  if (dropped == 0) return;
  dropped_at_stop_.add(static_cast<double>(dropped));
  pending_gauge_.add(-static_cast<double>(dropped));
  host_.log().warn(
      "stopping: dropped {} {} pushes still queued, in flight or waiting for a retry "
      "(dropped_at_stop_total)",
      dropped, options_.platform);
}

void Dispatcher::on_offer(const Event& event) {
  const auto* offer = event.payload.if_object();
  const auto* tokens = offer ? offer->if_contains("tokens") : nullptr;
  if (tokens == nullptr || !tokens->is_array()) {
    // Not the payload: it holds message text and device tokens.
    host_.log().warn("ignored a malformed {} ({} bytes): no \"tokens\" array", event.name,
                     json::serialize(event.payload).size());
    return;
  }
  offers_.add();
  const auto* badge = offer->if_contains("badge");
  for (const auto& token : tokens->get_array()) {
    if (!token.is_string() || token.get_string().empty()) continue;
    auto push = std::make_shared<Push>();
    push->user_id = string_field(*offer, "user_id");
    push->token = std::string(token.get_string());
    push->title = truncate_utf8(string_field(*offer, "title"), kMaxTitleBytes);
    push->body = truncate_utf8(string_field(*offer, "body"), kMaxBodyBytes);
    push->badge = badge && badge->is_int64() ? badge->get_int64() : 0;
    push->conversation = string_field(*offer, "conversation");
    push->message_id = string_field(*offer, "message_id");
    push->group_id = string_field(*offer, "group_id");
    admit(std::move(push));
  }
}

void Dispatcher::admit(std::shared_ptr<Push> push) {
  // A slow or dead service must never hold chat up: beyond the bound a
  // push is dropped, not waited for.
  std::size_t pending = pending_.load();
  do {
    if (pending >= options_.max_pending) {
      dropped_.add();
      // One line per overflow, not per push: the counter has the total.
      if (!overflowing_.exchange(true)) {
        host_.log().warn(
            "push queue full ({} pending): dropping pushes (first: user {}, message {}) until "
            "it drains; see dropped_queue_full_total",
            pending, push->user_id, push->message_id);
      }
      return;
    }
  } while (!pending_.compare_exchange_weak(pending, pending + 1));
  if (overflowing_.exchange(false)) host_.log().info("push queue accepts pushes again");
  pending_gauge_.add(1);
  push->queued_at = std::chrono::steady_clock::now();
  loop_.post([this, push = std::move(push)] { attempt(push); });
}

void Dispatcher::attempt(const std::shared_ptr<Push>& push) {
  ++push->attempts;
  platform_.attempt(push, [this, push](Outcome outcome) { handle(push, std::move(outcome)); });
}

void Dispatcher::handle(const std::shared_ptr<Push>& push, Outcome outcome) {
  switch (outcome.kind) {
    case Outcome::Kind::sent:
      sent_.add();
      return finished();
    case Outcome::Kind::token_invalid:
      reason_counter("tokens_invalid_", outcome.reason).add();
      host_.log().info("{} token of user {} is dead ({}): reported", options_.platform,
                       push->user_id, outcome.reason);
      host_.bus().publish("push.token.invalid", json::object{{"platform", options_.platform},
                                                             {"token", push->token},
                                                             {"reason", outcome.reason}});
      return finished();
    case Outcome::Kind::failed:
      reason_counter("failures_", outcome.reason).add();
      if (const auto held = failure_log_.admit("failed " + outcome.reason)) {
        host_.log().warn(
            "push for user {} (message {}) failed: {} {} ({} more such failures since the last "
            "line; failures_total counts them all)",
            push->user_id, push->message_id, outcome.reason, outcome.detail, *held);
      }
      return finished();
    case Outcome::Kind::retry:
      break;
  }
  reason_counter("retryable_errors_", outcome.reason).add();
  const auto delay = retry_delay(push->attempts, options_.backoff_base, options_.backoff_max,
                                 outcome.retry_after, random_);
  const bool past_window =
      std::chrono::steady_clock::now() + delay - push->queued_at > options_.retry_window;
  if (push->attempts >= options_.max_attempts || past_window) {
    reason_counter("failures_", "retries_exhausted").add();
    if (const auto held = failure_log_.admit("given up " + outcome.reason)) {
      host_.log().warn(
          "push for user {} (message {}) given up after {} attempts: {} {} ({} more given up "
          "since the last line)",
          push->user_id, push->message_id, push->attempts, outcome.reason, outcome.detail, *held);
    }
    return finished();
  }
  retries_.add();
  host_.log().debug("push for user {} retried in {} ms: {}", push->user_id, delay.count(),
                    outcome.reason);
  loop_.after(delay, [this, push] { attempt(push); });
}

void Dispatcher::finished() {
  pending_.fetch_sub(1);
  pending_gauge_.add(-1);
}

Counter& Dispatcher::reason_counter(const std::string& prefix, const std::string& reason) {
  // One metric per outcome kind, one series per reason:
  // failures_total{reason="bad_device_token"}.
  const std::string label = snake_case(reason);
  auto& counter = by_reason_[prefix + label];
  if (counter == nullptr) {
    counter = &host_.metrics().counter(prefix + "total", "Pushes by outcome, by reason",
                                       {{"reason", label}});
  }
  return *counter;
}

DispatcherOptions DispatcherOptions::from_config(Config& config, std::string platform) {
  DispatcherOptions o;
  o.platform = std::move(platform);
  o.max_pending = static_cast<std::size_t>(
      config.int_in("queue_size", static_cast<std::int64_t>(o.max_pending), 1, 10000000));
  o.max_attempts = static_cast<int>(config.int_in("max_attempts", o.max_attempts, 1, 100));
  o.retry_window = std::chrono::milliseconds(
      config.int_in("retry_window_ms", o.retry_window.count(), 1, 86400000));
  o.backoff_base = std::chrono::milliseconds(
      config.int_in("backoff_base_ms", o.backoff_base.count(), 1, 3600000));
  o.backoff_max =
      std::chrono::milliseconds(config.int_in("backoff_max_ms", o.backoff_max.count(), 1, 3600000));
  return o;
}

}  // namespace parley::push
