// 1:1 messaging: P pairs of users, each user on its own connection; the
// first of each pair sends to the second.
//   closed loop: every sender keeps --window sends in flight.
//   open loop:   --rate sends per second in total, spread over the senders
//                by a timer; latency counts from the scheduled send time, so
//                a generator that falls behind shows up as latency (and
//                how far behind it starts sends is reported on its own).
// Latency: send -> "ok" on the sender's connection, send -> "message" event
// on the receiver's connection (the send time travels in the message text).
// After the measured window no new send starts; every ok must then be
// delivered exactly once. The window's send->delivery is also reported per
// 100 ms of send time (the largest, and how many took over 10 ms): whether a
// tail is spread evenly or comes in bursts tells queueing from a stall.
#include <atomic>
#include <charconv>
#include <cmath>
#include <memory>
#include <thread>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "../histogram.hpp"
#include "../scenario.hpp"
#include "../system.hpp"

namespace parley::bench {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

class Messaging final : public Scenario {
 public:
  std::string_view name() const override { return "messaging"; }
  std::string_view description() const override {
    return "1:1 messages between pairs of users: throughput, send->ok and send->delivery latency";
  }

  void configure(Options& o) override {
    pairs_ = static_cast<std::size_t>(o.integer("pairs", 50, 1, 1'000'000));
    mode_ = o.string("mode", "closed");
    if (mode_ != "closed" && mode_ != "open") throw OptionError("--mode must be closed or open");
    if (mode_ == "closed") {
      window_ = static_cast<std::size_t>(o.integer("window", 16, 1, 100'000));
    } else {
      rate_ = o.number("rate", 1000, 1, 10'000'000);
      max_in_flight_ = static_cast<std::size_t>(o.integer("max-in-flight", 1000, 1, 10'000'000));
    }
    duration_ = o.number("duration", 10, 0.1, 86400);
    warmup_ = o.number("warmup", 2, 0, 3600);
    message_size_ = static_cast<std::size_t>(o.integer("message-size", 64, 32, 4000));
    drain_timeout_ = o.number("drain-timeout", 30, 1, 3600);
    login_concurrency_ = static_cast<std::size_t>(o.integer("login-concurrency", 64, 1, 100'000));
  }

  void run(Context& ctx) override;

 private:
  struct Pair {
    Client* sender = nullptr;
    Client* receiver = nullptr;
    std::string to;
    std::string prefix;
    // Sender's strand.
    std::uint64_t next = 0;
    std::uint64_t in_flight = 0;
    // Receiver's strand.
    std::vector<bool> seen;
    std::int64_t last_seq = 0;
    // Read by the main thread at the end.
    std::atomic<std::uint64_t> oks{0};
    std::atomic<std::uint64_t> delivered{0};
  };

  struct Shared {
    std::int64_t window_start = 0;  // steady ns
    std::int64_t window_end = 0;
    std::atomic<bool> stop{false};
    Histogram to_ok;
    Histogram to_delivery;
    // Open loop: how late the generator itself starts a send, a part of
    // both latencies above that is not the server's.
    Histogram send_lag;
    // Per kSlotNs of scheduled send time in the window.
    std::unique_ptr<std::atomic<std::uint64_t>[]> slot_max_us;
    std::unique_ptr<std::atomic<std::uint64_t>[]> slot_over_10ms;
    std::size_t slots = 0;
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> oks{0};
    std::atomic<std::uint64_t> oks_in_window{0};
    std::atomic<std::uint64_t> in_flight{0};
    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> duplicates{0};
    std::atomic<std::uint64_t> out_of_order{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> skipped{0};
    std::mutex mutex;
    std::string first_error;
    void error(const std::string& why) {
      errors.fetch_add(1);
      std::lock_guard lock(mutex);
      if (first_error.empty()) first_error = why;
    }
  };

  static constexpr std::int64_t kSlotNs = 100'000'000;

  void send_one(Pair& p, std::int64_t scheduled_ns);
  void record_in_timeline(std::int64_t scheduled_ns, std::int64_t latency_ns);
  boost::json::object timeline() const;
  void on_reply(Pair& p, std::int64_t scheduled_ns, const Json& reply);
  void on_event(Pair& p, const Json& event);

  std::size_t pairs_ = 0;
  std::string mode_;
  std::size_t window_ = 0;
  double rate_ = 0;
  std::size_t max_in_flight_ = 0;
  double duration_ = 0;
  double warmup_ = 0;
  std::size_t message_size_ = 0;
  double drain_timeout_ = 0;
  std::size_t login_concurrency_ = 0;
  Shared shared_;
};

void Messaging::send_one(Pair& p, std::int64_t scheduled_ns) {
  if (mode_ == "open" && p.in_flight >= max_in_flight_) {
    shared_.skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (mode_ == "open" && scheduled_ns >= shared_.window_start &&
      scheduled_ns < shared_.window_end) {
    shared_.send_lag.record(std::chrono::nanoseconds(now_ns() - scheduled_ns));
  }
  const std::uint64_t n = ++p.next;
  std::string cmid = p.prefix + std::to_string(n);
  // The text starts with the scheduled time, read back by the receiver.
  std::string text = std::to_string(scheduled_ns) + " " + cmid + " ";
  if (text.size() < message_size_) text.append(message_size_ - text.size(), 'x');
  ++p.in_flight;
  shared_.in_flight.fetch_add(1, std::memory_order_relaxed);
  shared_.sent.fetch_add(1, std::memory_order_relaxed);
  // Ids and text are digits, letters, '-' and ' ': nothing to escape.
  std::string members;
  members.reserve(64 + cmid.size() + text.size());
  members += "\"type\":\"send\",\"to\":\"";
  members += p.to;
  members += "\",\"client_msg_id\":\"";
  members += cmid;
  members += "\",\"message\":\"";
  members += text;
  members += '"';
  p.sender->request_members(std::move(members), [this, &p, scheduled_ns](const Json& reply) {
    on_reply(p, scheduled_ns, reply);
  });
}

void Messaging::on_reply(Pair& p, std::int64_t scheduled_ns, const Json& reply) {
  const std::int64_t now = now_ns();
  --p.in_flight;
  shared_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (!is_ok(reply)) {
    shared_.error("send: " + error_text(reply));
    return;
  }
  p.oks.fetch_add(1, std::memory_order_relaxed);
  shared_.oks.fetch_add(1, std::memory_order_relaxed);
  if (scheduled_ns >= shared_.window_start && scheduled_ns < shared_.window_end) {
    shared_.to_ok.record(std::chrono::nanoseconds(now - scheduled_ns));
  }
  if (now >= shared_.window_start && now < shared_.window_end) {
    shared_.oks_in_window.fetch_add(1, std::memory_order_relaxed);
  }
  if (mode_ == "closed" && !shared_.stop.load(std::memory_order_relaxed) &&
      now < shared_.window_end) {
    send_one(p, now);
  }
}

void Messaging::on_event(Pair& p, const Json& event) {
  if (get_string(event, "type") != "message") return;
  const std::int64_t now = now_ns();
  const auto text = get_string(event, "message");
  std::int64_t scheduled = 0;
  std::from_chars(text.data(), text.data() + text.size(), scheduled);
  const auto* seq_value = event.if_contains("seq");
  const std::int64_t seq =
      seq_value != nullptr && seq_value->is_int64() ? seq_value->get_int64() : 0;
  if (seq <= 0) {
    shared_.error("a message event without a valid seq");
    return;
  }
  const auto index = static_cast<std::size_t>(seq);
  if (p.seen.size() <= index) p.seen.resize(std::max(index + 1, p.seen.size() * 2));
  if (p.seen[index]) {
    shared_.duplicates.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  p.seen[index] = true;
  if (seq < p.last_seq) shared_.out_of_order.fetch_add(1, std::memory_order_relaxed);
  p.last_seq = std::max(p.last_seq, seq);
  p.delivered.fetch_add(1, std::memory_order_relaxed);
  shared_.delivered.fetch_add(1, std::memory_order_relaxed);
  if (scheduled >= shared_.window_start && scheduled < shared_.window_end) {
    shared_.to_delivery.record(std::chrono::nanoseconds(now - scheduled));
    record_in_timeline(scheduled, now - scheduled);
  }
}

void Messaging::record_in_timeline(std::int64_t scheduled_ns, std::int64_t latency_ns) {
  const auto slot = static_cast<std::size_t>((scheduled_ns - shared_.window_start) / kSlotNs);
  if (slot >= shared_.slots) return;
  const auto micros = static_cast<std::uint64_t>(std::max<std::int64_t>(latency_ns, 0) / 1000);
  auto& max = shared_.slot_max_us[slot];
  std::uint64_t seen = max.load(std::memory_order_relaxed);
  while (micros > seen && !max.compare_exchange_weak(seen, micros, std::memory_order_relaxed)) {
  }
  if (micros > 10'000) shared_.slot_over_10ms[slot].fetch_add(1, std::memory_order_relaxed);
}

boost::json::object Messaging::timeline() const {
  boost::json::array max_ms;
  boost::json::array over_10ms;
  for (std::size_t i = 0; i < shared_.slots; ++i) {
    max_ms.push_back(std::round(static_cast<double>(shared_.slot_max_us[i].load()) / 100.0) / 10.0);
    over_10ms.push_back(shared_.slot_over_10ms[i].load());
  }
  return {{"slot_ms", kSlotNs / 1'000'000},
          {"max_ms", std::move(max_ms)},
          {"over_10ms", std::move(over_10ms)}};
}

void Messaging::run(Context& ctx) {
  auto accounts = make_accounts(ctx.run_id, "msg", 2 * pairs_);
  std::vector<Pair> pairs(pairs_);
  std::optional<Net> net;  // after the state its callbacks use
  net.emplace(ctx.net);

  const auto setup_start = Clock::now();
  if (auto error = register_accounts(*net, accounts, ctx.timeout); !error.empty())
    return ctx.fail(error);
  auto clients = net->add_clients(2 * pairs_);
  for (std::size_t i = 0; i < pairs_; ++i) {
    Pair& p = pairs[i];
    p.sender = clients[2 * i];
    p.receiver = clients[2 * i + 1];
    p.to = accounts[2 * i + 1].user_id;
    p.prefix = ctx.run_id + "-" + std::to_string(i) + "-";
    p.receiver->set_event_handler([this, &p](const Json& event) { on_event(p, event); });
  }
  auto login =
      pipeline(clients.size(), login_concurrency_, ctx.timeout, [&](std::size_t i, Done done) {
        connect_and_login(*clients[i], accounts[i], /*by_token=*/false, std::move(done));
      });
  if (!login.error.empty()) return ctx.fail("login: " + login.error);
  const double setup_seconds = seconds_since(setup_start);

  // The clock starts: warm-up, then the measured window.
  const std::int64_t start = now_ns();
  shared_.window_start = start + static_cast<std::int64_t>(warmup_ * 1e9);
  shared_.window_end = shared_.window_start + static_cast<std::int64_t>(duration_ * 1e9);
  shared_.slots =
      static_cast<std::size_t>((shared_.window_end - shared_.window_start + kSlotNs - 1) / kSlotNs);
  shared_.slot_max_us = std::make_unique<std::atomic<std::uint64_t>[]>(shared_.slots);
  shared_.slot_over_10ms = std::make_unique<std::atomic<std::uint64_t>[]>(shared_.slots);
  const auto to_time = [](std::int64_t ns) {
    return Clock::time_point(std::chrono::nanoseconds(ns));
  };

  std::optional<boost::asio::steady_timer> timer;
  std::function<void()> tick;
  std::uint64_t scheduled_count = 0;  // timer strand
  if (mode_ == "closed") {
    for (auto& p : pairs) {
      p.sender->post([this, &p] {
        for (std::size_t k = 0; k < window_; ++k) send_one(p, now_ns());
      });
    }
  } else {
    timer.emplace(boost::asio::make_strand(net->ioc()));
    tick = [&] {
      const std::int64_t now = now_ns();
      const std::int64_t until = std::min(now, shared_.window_end - 1);
      // Send k is due at start + k / rate: by `until`, floor(elapsed * rate) + 1 are due.
      const auto due =
          static_cast<std::uint64_t>(std::floor(static_cast<double>(until - start) * rate_ / 1e9)) +
          1;
      for (; scheduled_count < due; ++scheduled_count) {
        Pair& p = pairs[scheduled_count % pairs_];
        const auto at =
            start + static_cast<std::int64_t>(static_cast<double>(scheduled_count) * 1e9 / rate_);
        p.sender->post([this, &p, at] { send_one(p, at); });
      }
      if (now >= shared_.window_end || shared_.stop.load()) return;
      timer->expires_after(std::chrono::milliseconds(1));
      timer->async_wait([&](boost::system::error_code ec) {
        if (!ec) tick();
      });
    };
    boost::asio::post(timer->get_executor(), tick);
  }

  CpuMeter cpu(ctx.server_pid);
  std::this_thread::sleep_until(to_time(shared_.window_start));
  cpu.start();
  std::this_thread::sleep_until(to_time(shared_.window_end));
  auto cpu_result = cpu.stop();
  shared_.stop = true;

  // Drain: every send answered and every ok delivered.
  const auto drain_start = Clock::now();
  bool drained = false;
  while (seconds_since(drain_start) < drain_timeout_) {
    if (shared_.in_flight.load() == 0 &&
        shared_.delivered.load() + shared_.duplicates.load() >= shared_.oks.load()) {
      drained = true;
      break;
    }
    if (net->unexpected_closes() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Late deliveries beyond the count (duplicates) show up within a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const double drain_seconds = seconds_since(drain_start);
  const auto closes = net->unexpected_closes();
  const auto first_close = net->first_unexpected_close();
  timer.reset();
  net.reset();  // I/O stops: the counters are final

  std::uint64_t missing = 0;
  for (const auto& p : pairs) {
    const auto oks = p.oks.load();
    const auto got = p.delivered.load();
    if (got < oks) missing += oks - got;
  }

  auto& r = ctx.results;
  r["setup_seconds"] = std::round(setup_seconds * 1000) / 1000;
  r["messages_ok_in_window"] = shared_.oks_in_window.load();
  r["messages_per_second"] =
      std::llround(static_cast<double>(shared_.oks_in_window.load()) / duration_);
  if (mode_ == "open") {
    r["offered_per_second"] = rate_;
    r["skipped_over_max_in_flight"] = shared_.skipped.load();
    r["generator_send_lag"] = shared_.send_lag.summary();
  }
  r["sent_total"] = shared_.sent.load();
  r["ok_total"] = shared_.oks.load();
  r["delivered_total"] = shared_.delivered.load();
  r["missing_deliveries"] = missing;
  r["duplicate_deliveries"] = shared_.duplicates.load();
  r["out_of_order_deliveries"] = shared_.out_of_order.load();
  r["errors"] = shared_.errors.load();
  if (!shared_.first_error.empty()) r["first_error"] = shared_.first_error;
  r["unexpected_closes"] = closes;
  r["send_to_ok"] = shared_.to_ok.summary();
  r["send_to_delivery"] = shared_.to_delivery.summary();
  auto slots = timeline();
  // The wall clock of the first slot, to set beside other logs (PostgreSQL's).
  slots["start_unix_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count() -
                           (now_ns() - shared_.window_start) / 1'000'000;
  r["send_to_delivery_timeline"] = std::move(slots);
  r["drain_seconds"] = std::round(drain_seconds * 1000) / 1000;
  r["cpu"] = std::move(cpu_result);

  if (shared_.errors.load() > 0)
    ctx.fail(std::to_string(shared_.errors.load()) + " send errors, first: " + shared_.first_error);
  if (closes > 0)
    ctx.fail(std::to_string(closes) + " connections closed unexpectedly, first: " + first_close);
  if (!drained) ctx.fail("not every send was answered and delivered within --drain-timeout");
  if (missing > 0)
    ctx.fail(std::to_string(missing) + " acknowledged messages were never delivered");
  if (shared_.duplicates.load() > 0)
    ctx.fail(std::to_string(shared_.duplicates.load()) + " messages delivered twice");
  if (shared_.oks_in_window.load() == 0)
    ctx.fail("no message was acknowledged in the measured window");
}

}  // namespace

PARLEY_BENCH_SCENARIO("messaging", Messaging);

}  // namespace parley::bench
