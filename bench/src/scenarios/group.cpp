// Group fan-out: G groups of M members, every member a different user on its
// own connection. The first member of each group creates it with the other
// M-1 (in order, so the last listed is the last member); the first S members
// of each group send to it.
//   closed loop: every sender keeps --window sends in flight.
//   open loop:   --rate sends per second in total, spread over all senders
//                by a timer; latency counts from the scheduled send time.
// Each acknowledged message must reach each of the other M-1 members exactly
// once (the server sends nothing to the sending connection). Latency:
// send -> "ok" at the sender, send -> "message" event at the group's last
// member, and at every member. After the measured window no new send starts;
// the run then waits until every ok is delivered and checks, per member and
// seq, that nothing was lost, repeated or sent back to its sender.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <mutex>
#include <thread>

#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/array.hpp>

#include "../histogram.hpp"
#include "../scenario.hpp"
#include "../system.hpp"

namespace parley::bench {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string_view string_view_at(const Json& object, std::string_view key) {
  const auto* v = object.if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  const auto& s = v->get_string();
  return {s.data(), s.size()};
}

class Group final : public Scenario {
 public:
  std::string_view name() const override { return "group"; }
  std::string_view description() const override {
    return "G groups of M members, S senders each: deliveries per second, send->ok and "
           "send->delivery latency at the last member, CPU per delivery";
  }

  void configure(Options& o) override {
    groups_ = static_cast<std::size_t>(o.integer("groups", 4, 1, 100'000));
    members_ = static_cast<std::size_t>(o.integer("members", 256, 2, 1'000'000));
    senders_ = static_cast<std::size_t>(o.integer("senders", 4, 1, 1'000'000));
    if (senders_ > members_) throw OptionError("--senders must not exceed --members");
    mode_ = o.string("mode", "closed");
    if (mode_ != "closed" && mode_ != "open") throw OptionError("--mode must be closed or open");
    if (mode_ == "closed") {
      window_ = static_cast<std::size_t>(o.integer("window", 16, 1, 100'000));
    } else {
      rate_ = o.number("rate", 100, 0.1, 10'000'000);
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
  struct Member {
    Client* client = nullptr;
    std::string user_id;
    bool last = false;  // the last in its group's member list
    // The member's strand.
    std::vector<bool> seen;  // by seq: user messages received
    std::int64_t last_seq = 0;
    // Read by the main thread.
    std::atomic<bool> created_seen{false};  // the group's creation message arrived
  };

  struct Sender {
    Member* member = nullptr;
    std::size_t group = 0;
    std::string prefix;  // of client_msg_id
    // The sender's strand.
    std::uint64_t next = 0;
    std::uint64_t in_flight = 0;
    std::vector<std::int64_t> acked_seqs;  // read by the main thread once I/O stopped
  };

  struct Shared {
    std::int64_t window_start = 0;  // steady ns
    std::int64_t window_end = 0;
    std::atomic<bool> stop{false};
    Histogram to_ok;
    Histogram to_delivery_last;
    Histogram to_delivery_all;
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> oks{0};
    std::atomic<std::uint64_t> oks_in_window{0};
    std::atomic<std::uint64_t> in_flight{0};
    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> delivered_in_window{0};
    std::atomic<std::uint64_t> duplicates{0};
    std::atomic<std::uint64_t> out_of_order{0};
    std::atomic<std::uint64_t> to_sender{0};  // a message delivered back to its sender
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

  void send_one(Sender& s, std::int64_t scheduled_ns);
  void on_reply(Sender& s, std::int64_t scheduled_ns, const Json& reply);
  void on_event(Member& m, const Json& event);

  std::size_t groups_ = 0;
  std::size_t members_ = 0;
  std::size_t senders_ = 0;
  std::string mode_;
  std::size_t window_ = 0;
  double rate_ = 0;
  std::size_t max_in_flight_ = 0;
  double duration_ = 0;
  double warmup_ = 0;
  std::size_t message_size_ = 0;
  double drain_timeout_ = 0;
  std::size_t login_concurrency_ = 0;
  std::vector<std::string> group_ids_;  // written before the first send
  Shared shared_;
};

void Group::send_one(Sender& s, std::int64_t scheduled_ns) {
  if (mode_ == "open" && s.in_flight >= max_in_flight_) {
    shared_.skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t n = ++s.next;
  std::string cmid = s.prefix + std::to_string(n);
  // The text starts with the scheduled time, read back by the members.
  std::string text = std::to_string(scheduled_ns) + " " + cmid + " ";
  if (text.size() < message_size_) text.append(message_size_ - text.size(), 'x');
  ++s.in_flight;
  shared_.in_flight.fetch_add(1, std::memory_order_relaxed);
  shared_.sent.fetch_add(1, std::memory_order_relaxed);
  // Ids and text are digits, letters, '-' and ' ': nothing to escape.
  std::string members;
  members.reserve(72 + cmid.size() + text.size());
  members += "\"type\":\"send\",\"group_id\":\"";
  members += group_ids_[s.group];
  members += "\",\"client_msg_id\":\"";
  members += cmid;
  members += "\",\"message\":\"";
  members += text;
  members += '"';
  s.member->client->request_members(
      std::move(members),
      [this, &s, scheduled_ns](const Json& reply) { on_reply(s, scheduled_ns, reply); });
}

void Group::on_reply(Sender& s, std::int64_t scheduled_ns, const Json& reply) {
  const std::int64_t now = now_ns();
  --s.in_flight;
  shared_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (!is_ok(reply)) {
    shared_.error("send: " + error_text(reply));
    return;
  }
  const auto* seq = reply.if_contains("seq");
  if (seq == nullptr || !seq->is_int64() || seq->get_int64() <= 0) {
    shared_.error("a send's ok without a valid seq");
    return;
  }
  s.acked_seqs.push_back(seq->get_int64());
  shared_.oks.fetch_add(1, std::memory_order_relaxed);
  if (scheduled_ns >= shared_.window_start && scheduled_ns < shared_.window_end) {
    shared_.to_ok.record(std::chrono::nanoseconds(now - scheduled_ns));
  }
  if (now >= shared_.window_start && now < shared_.window_end) {
    shared_.oks_in_window.fetch_add(1, std::memory_order_relaxed);
  }
  if (mode_ == "closed" && !shared_.stop.load(std::memory_order_relaxed) &&
      now < shared_.window_end) {
    send_one(s, now);
  }
}

void Group::on_event(Member& m, const Json& event) {
  if (string_view_at(event, "type") != "message" || string_view_at(event, "group_id").empty())
    return;
  // System messages (the group's creation) are not what is measured.
  if (string_view_at(event, "eventType") != "user") {
    m.created_seen.store(true);
    return;
  }
  const std::int64_t now = now_ns();
  if (string_view_at(event, "sender_id") == m.user_id) {
    shared_.to_sender.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const auto text = string_view_at(event, "message");
  std::int64_t scheduled = 0;
  std::from_chars(text.data(), text.data() + text.size(), scheduled);
  const auto* seq_value = event.if_contains("seq");
  const std::int64_t seq =
      seq_value != nullptr && seq_value->is_int64() ? seq_value->get_int64() : 0;
  if (seq <= 0) {
    shared_.error("a group message event without a valid seq");
    return;
  }
  const auto index = static_cast<std::size_t>(seq);
  if (m.seen.size() <= index) m.seen.resize(std::max(index + 1, m.seen.size() * 2));
  if (m.seen[index]) {
    shared_.duplicates.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  m.seen[index] = true;
  if (seq < m.last_seq) shared_.out_of_order.fetch_add(1, std::memory_order_relaxed);
  m.last_seq = std::max(m.last_seq, seq);
  shared_.delivered.fetch_add(1, std::memory_order_relaxed);
  if (now >= shared_.window_start && now < shared_.window_end) {
    shared_.delivered_in_window.fetch_add(1, std::memory_order_relaxed);
  }
  if (scheduled >= shared_.window_start && scheduled < shared_.window_end) {
    const std::chrono::nanoseconds latency(now - scheduled);
    shared_.to_delivery_all.record(latency);
    if (m.last) shared_.to_delivery_last.record(latency);
  }
}

void Group::run(Context& ctx) {
  const std::size_t users = groups_ * members_;
  auto accounts = make_accounts(ctx.run_id, "grp", users);
  std::vector<Member> members(users);  // group g holds [g*M, (g+1)*M)
  std::vector<Sender> senders(groups_ * senders_);
  group_ids_.assign(groups_, std::string());
  std::optional<Net> net;  // after the state its callbacks use
  net.emplace(ctx.net);

  const auto setup_start = Clock::now();
  if (auto error = register_accounts(*net, accounts, ctx.timeout); !error.empty())
    return ctx.fail(error);
  auto clients = net->add_clients(users);
  for (std::size_t i = 0; i < users; ++i) {
    Member& m = members[i];
    m.client = clients[i];
    m.user_id = accounts[i].user_id;
    m.last = i % members_ == members_ - 1;
    m.client->set_event_handler([this, &m](const Json& event) { on_event(m, event); });
  }
  for (std::size_t g = 0; g < groups_; ++g) {
    for (std::size_t k = 0; k < senders_; ++k) {
      Sender& s = senders[g * senders_ + k];
      s.member = &members[g * members_ + k];
      s.group = g;
      s.prefix = ctx.run_id + "-g" + std::to_string(g) + "-" + std::to_string(k) + "-";
    }
  }
  auto login = pipeline(users, login_concurrency_, ctx.timeout, [&](std::size_t i, Done done) {
    connect_and_login(*clients[i], accounts[i], /*by_token=*/false, std::move(done));
  });
  if (!login.error.empty()) return ctx.fail("login: " + login.error);

  auto created = pipeline(groups_, groups_, ctx.timeout, [&](std::size_t g, Done done) {
    boost::json::array others;
    for (std::size_t k = 1; k < members_; ++k)
      others.emplace_back(accounts[g * members_ + k].user_id);
    members[g * members_].client->request(
        Json{{"type", "group.create"},
             {"name", "bench " + ctx.run_id + " " + std::to_string(g)},
             {"members", std::move(others)}},
        [this, g, done = std::move(done)](const Json& reply) {
          if (!is_ok(reply)) return done("group.create: " + error_text(reply));
          group_ids_[g] = get_string(reply, "group_id");
          done(group_ids_[g].empty() ? "group.create: no group_id in the ok" : "");
        });
  });
  if (!created.error.empty()) return ctx.fail(created.error);
  // Every member has seen its group's creation: the fan-out starts from a
  // group every connection knows, not from the creation's own fan-out.
  const auto created_by = Clock::now() + ctx.timeout;
  while (!std::all_of(members.begin(), members.end(),
                      [](const Member& m) { return m.created_seen.load(); })) {
    if (Clock::now() > created_by)
      return ctx.fail("not every member received its group's creation message within --timeout");
    if (net->unexpected_closes() > 0)
      return ctx.fail("a connection closed in the setup: " + net->first_unexpected_close());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double setup_seconds = seconds_since(setup_start);

  // The clock starts: warm-up, then the measured window.
  const std::int64_t start = now_ns();
  shared_.window_start = start + static_cast<std::int64_t>(warmup_ * 1e9);
  shared_.window_end = shared_.window_start + static_cast<std::int64_t>(duration_ * 1e9);
  const auto to_time = [](std::int64_t ns) {
    return Clock::time_point(std::chrono::nanoseconds(ns));
  };

  std::optional<boost::asio::steady_timer> timer;
  std::function<void()> tick;
  std::uint64_t scheduled_count = 0;  // timer strand
  if (mode_ == "closed") {
    for (auto& s : senders) {
      s.member->client->post([this, &s] {
        for (std::size_t k = 0; k < window_; ++k) send_one(s, now_ns());
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
        Sender& s = senders[scheduled_count % senders.size()];
        const auto at =
            start + static_cast<std::int64_t>(static_cast<double>(scheduled_count) * 1e9 / rate_);
        s.member->client->post([this, &s, at] { send_one(s, at); });
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

  // Drain: every send answered and every ok delivered to the M-1 others.
  const std::uint64_t others = members_ - 1;
  const auto drain_start = Clock::now();
  bool drained = false;
  while (seconds_since(drain_start) < drain_timeout_) {
    if (shared_.in_flight.load() == 0 &&
        shared_.delivered.load() + shared_.duplicates.load() >= shared_.oks.load() * others) {
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

  // Per group, who sent each acknowledged seq; then, per member, every seq
  // another member sent must have been seen, and nothing unacknowledged.
  std::uint64_t missing = 0;
  std::uint64_t unacknowledged = 0;
  for (std::size_t g = 0; g < groups_; ++g) {
    constexpr std::size_t kNobody = static_cast<std::size_t>(-1);
    std::vector<std::size_t> sender_of;  // by seq: the index in the group, or kNobody
    for (std::size_t k = 0; k < senders_; ++k) {
      for (const auto seq : senders[g * senders_ + k].acked_seqs) {
        const auto index = static_cast<std::size_t>(seq);
        if (sender_of.size() <= index) sender_of.resize(index + 1, kNobody);
        sender_of[index] = k;
      }
    }
    for (std::size_t k = 0; k < members_; ++k) {
      const auto& seen = members[g * members_ + k].seen;
      for (std::size_t seq = 1; seq < std::max(sender_of.size(), seen.size()); ++seq) {
        const std::size_t by = seq < sender_of.size() ? sender_of[seq] : kNobody;
        const bool got = seq < seen.size() && seen[seq];
        if (by == kNobody) {
          if (got) ++unacknowledged;
        } else if (by != k && !got) {
          ++missing;
        }
      }
    }
  }

  const double window_deliveries = static_cast<double>(shared_.delivered_in_window.load());
  const double window_messages = static_cast<double>(shared_.oks_in_window.load());
  auto& r = ctx.results;
  r["connections"] = users;
  r["setup_seconds"] = std::round(setup_seconds * 1000) / 1000;
  r["messages_ok_in_window"] = shared_.oks_in_window.load();
  r["messages_per_second"] = std::llround(window_messages / duration_);
  r["deliveries_in_window"] = shared_.delivered_in_window.load();
  r["deliveries_per_second"] = std::llround(window_deliveries / duration_);
  if (mode_ == "open") {
    r["offered_per_second"] = rate_;
    r["skipped_over_max_in_flight"] = shared_.skipped.load();
  }
  r["sent_total"] = shared_.sent.load();
  r["ok_total"] = shared_.oks.load();
  r["delivered_total"] = shared_.delivered.load();
  r["expected_deliveries"] = shared_.oks.load() * others;
  r["missing_deliveries"] = missing;
  r["duplicate_deliveries"] = shared_.duplicates.load();
  r["out_of_order_deliveries"] = shared_.out_of_order.load();
  r["deliveries_to_sender"] = shared_.to_sender.load();
  r["unacknowledged_deliveries"] = unacknowledged;
  r["errors"] = shared_.errors.load();
  if (!shared_.first_error.empty()) r["first_error"] = shared_.first_error;
  r["unexpected_closes"] = closes;
  r["send_to_ok"] = shared_.to_ok.summary();
  r["send_to_delivery_last_member"] = shared_.to_delivery_last.summary();
  r["send_to_delivery_all_members"] = shared_.to_delivery_all.summary();
  r["drain_seconds"] = std::round(drain_seconds * 1000) / 1000;
  // CPU per delivery and per message, in microseconds, over the window.
  const auto per = [](double seconds, double count) {
    return std::round(seconds * 1e6 / count * 100) / 100;
  };
  if (window_deliveries > 0) {
    if (const auto* server = cpu_result.if_contains("server_cpu_s")) {
      const double s = server->to_number<double>();
      r["server_cpu_us_per_delivery"] = per(s, window_deliveries);
      r["server_cpu_us_per_message"] = per(s, window_messages);
    }
    if (const auto* busy = cpu_result.if_contains("machine_busy_fraction")) {
      const double s = busy->to_number<double>() *
                       static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN)) *
                       cpu_result.at("wall_s").to_number<double>();
      r["machine_cpu_us_per_delivery"] = per(s, window_deliveries);
    }
    r["generator_cpu_us_per_delivery"] =
        per(cpu_result.at("generator_cpu_s").to_number<double>(), window_deliveries);
  }
  r["cpu"] = std::move(cpu_result);

  if (shared_.errors.load() > 0)
    ctx.fail(std::to_string(shared_.errors.load()) + " send errors, first: " + shared_.first_error);
  if (closes > 0)
    ctx.fail(std::to_string(closes) + " connections closed unexpectedly, first: " + first_close);
  if (!drained) ctx.fail("not every send was answered and delivered within --drain-timeout");
  if (missing > 0)
    ctx.fail(std::to_string(missing) + " deliveries of acknowledged messages never arrived");
  if (shared_.duplicates.load() > 0)
    ctx.fail(std::to_string(shared_.duplicates.load()) + " deliveries arrived twice");
  if (shared_.to_sender.load() > 0)
    ctx.fail(std::to_string(shared_.to_sender.load()) +
             " messages came back to their sending connection");
  if (unacknowledged > 0)
    ctx.fail(std::to_string(unacknowledged) + " deliveries of messages whose send got no ok");
  if (shared_.oks_in_window.load() == 0)
    ctx.fail("no message was acknowledged in the measured window");
}

}  // namespace

PARLEY_BENCH_SCENARIO("group", Group);

}  // namespace parley::bench
