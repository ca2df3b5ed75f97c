// Presence: N users each subscribed to K contacts (user i watches i+1..i+K,
// after one 1:1 message to each, so that they may). Then, for D seconds,
// R users per second drop their connection, and each comes back `away`
// milliseconds later with a token login and subscribes again. Measures the
// presence events the watchers receive per second and the delay from the
// change (the close, or the start of the reconnect) to each watcher; with --server-pid,
// the server's resident memory per subscription. Needs parleyd with the
// presence plugin and grace_seconds: 0 (a grace period would be counted as
// delay).
#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <unordered_map>

#include "../histogram.hpp"
#include "../scenario.hpp"
#include "../system.hpp"

namespace parley::bench {
namespace {

class Presence final : public Scenario {
 public:
  std::string_view name() const override { return "presence"; }
  std::string_view description() const override {
    return "N users watching K contacts each; R per second reconnect: presence events per "
           "second and the delay to each watcher";
  }

  void configure(Options& o) override {
    users_ = static_cast<std::size_t>(o.integer("users", 1000, 2, 10'000'000));
    contacts_ = static_cast<std::size_t>(o.integer("contacts", 10, 1, 1000));
    rate_ = o.number("churn-per-second", 100, 0.1, 1'000'000);
    duration_ = o.number("duration", 10, 0.1, 86400);
    away_ = std::chrono::milliseconds(o.integer("away-ms", 500, 1, 600'000));
    // Password logins in the setup: parleyd refuses more waiting hashes than
    // its cpu_queue_limit (64 by default) with `unavailable`.
    concurrency_ = static_cast<std::size_t>(o.integer("concurrency", 64, 1, 1'000'000));
  }

  void run(Context& ctx) override {
    if (contacts_ >= users_) return ctx.fail("--contacts must be below --users");
    auto accounts = make_accounts(ctx.run_id, "pr", users_);
    const auto start = Clock::now();
    // Per user: when its last offline / online change began (ns after start).
    std::vector<std::atomic<std::int64_t>> went_offline(users_);
    std::vector<std::atomic<std::int64_t>> came_online(users_);
    std::unordered_map<std::string, std::size_t> index_of;
    Histogram offline_delay;
    Histogram online_delay;
    // From the start of a reconnect to its login's "synced": the part of
    // online_delay that is not presence's.
    Histogram reconnect_login;
    std::atomic<std::uint64_t> events{0};
    std::optional<Net> net;
    net.emplace(ctx.net);

    const auto setup_start = Clock::now();
    if (auto error = register_accounts(*net, accounts, ctx.timeout); !error.empty())
      return ctx.fail(error);
    for (std::size_t i = 0; i < users_; ++i) index_of.emplace(accounts[i].user_id, i);

    const auto on_event = [&](const Json& event) {
      if (get_string(event, "type") != "presence") return;
      const auto found = index_of.find(get_string(event, "user_id"));
      if (found == index_of.end()) return;
      events.fetch_add(1, std::memory_order_relaxed);
      const bool online = event.contains("online") && event.at("online").as_bool();
      const auto began = (online ? came_online : went_offline)[found->second].load();
      if (began <= 0) return;
      const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
      (online ? online_delay : offline_delay).record(now - std::chrono::nanoseconds(began));
    };
    const auto contacts_of = [&](std::size_t i) {
      boost::json::array ids;
      for (std::size_t k = 1; k <= contacts_; ++k)
        ids.emplace_back(accounts[(i + k) % users_].user_id);
      return ids;
    };
    const auto subscribe = [&](Client& client, std::size_t i, Done done) {
      client.request(Json{{"type", "presence.subscribe"}, {"users", contacts_of(i)}},
                     [done = std::move(done)](const Json& reply) {
                       done(is_ok(reply) ? std::string() : "subscribe: " + error_text(reply));
                     });
    };

    std::vector<Client*> clients = net->add_clients(users_);
    for (auto* c : clients) c->set_event_handler(on_event);
    auto logged_in = pipeline(users_, concurrency_, ctx.timeout, [&](std::size_t i, Done done) {
      connect_and_login(*clients[i], accounts[i], false, std::move(done));
    });
    if (!logged_in.error.empty()) return ctx.fail("logins: " + logged_in.error);
    // Sharing: one message from each user to each of its contacts.
    auto sent =
        pipeline(users_ * contacts_, concurrency_, ctx.timeout, [&](std::size_t n, Done done) {
          const std::size_t i = n / contacts_;
          const std::size_t k = n % contacts_ + 1;
          clients[i]->request(Json{{"type", "send"},
                                   {"to", accounts[(i + k) % users_].user_id},
                                   {"client_msg_id", "pr-" + std::to_string(n)},
                                   {"message", "hello"}},
                              [done = std::move(done)](const Json& reply) {
                                done(is_ok(reply) ? std::string() : "send: " + error_text(reply));
                              });
        });
    if (!sent.error.empty()) return ctx.fail("sharing messages: " + sent.error);
    // 0 when unknown.
    const std::uint64_t rss_before = ctx.server_pid ? rss_bytes(*ctx.server_pid).value_or(0) : 0;
    auto subscribed = pipeline(users_, concurrency_, ctx.timeout, [&](std::size_t i, Done done) {
      subscribe(*clients[i], i, std::move(done));
    });
    if (!subscribed.error.empty()) return ctx.fail(subscribed.error);
    const std::uint64_t rss_after = ctx.server_pid ? rss_bytes(*ctx.server_pid).value_or(0) : 0;
    const double setup_seconds = seconds_since(setup_start);

    // The churn: user u drops at tick t and is back `away_` later.
    struct Away {
      std::size_t user;
      Clock::time_point back_at;
    };
    std::deque<Away> away;
    std::vector<bool> is_away(users_, false);
    std::atomic<std::uint64_t> return_failures{0};
    std::mutex first_error_mutex;
    std::string first_return_error;
    // Users drop in a shuffled order: in id order, a user's watchers (the
    // users just before it) would be away themselves when it drops.
    std::vector<std::size_t> order(users_);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(42));
    std::size_t next_user = 0;
    std::uint64_t churned = 0;
    CpuMeter cpu(ctx.server_pid);
    cpu.start();
    const auto churn_start = Clock::now();
    const auto churn_end = churn_start + seconds_ms(duration_);
    const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / rate_));
    auto next_drop = churn_start;
    const auto since_start = [&] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    };
    while (Clock::now() < churn_end || !away.empty()) {
      const auto now = Clock::now();
      while (!away.empty() && away.front().back_at <= now) {
        const std::size_t u = away.front().user;
        away.pop_front();
        is_away[u] = false;
        Client& fresh = net->add_client();
        fresh.set_event_handler(on_event);
        clients[u] = &fresh;
        came_online[u] = since_start();
        connect_and_login(fresh, accounts[u], true, [&, u, c = &fresh](const std::string& e) {
          if (!e.empty()) {
            if (return_failures.fetch_add(1) == 0) {
              std::lock_guard lock(first_error_mutex);
              first_return_error = e;
            }
            return;
          }
          reconnect_login.record(std::chrono::nanoseconds(since_start() - came_online[u].load()));
          subscribe(*c, u, [&](const std::string& error) {
            if (!error.empty()) return_failures.fetch_add(1);
          });
        });
      }
      if (now < churn_end && now >= next_drop) {
        const std::size_t u = order[next_user];
        next_user = (next_user + 1) % users_;
        next_drop += period;
        // More users away than there are: this tick drops nobody.
        if (is_away[u]) continue;
        is_away[u] = true;
        went_offline[u] = since_start();
        clients[u]->close();
        away.push_back({u, now + away_});
        ++churned;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // Let the last returns' events arrive.
    std::this_thread::sleep_for(away_ + std::chrono::milliseconds(500));
    const double churn_seconds = seconds_since(churn_start);
    auto cpu_result = cpu.stop();
    const auto closes = net->unexpected_closes();
    net.reset();

    auto& r = ctx.results;
    r["users"] = users_;
    r["contacts"] = contacts_;
    r["subscriptions"] = users_ * contacts_;
    r["setup_seconds"] = std::round(setup_seconds * 1000) / 1000;
    r["churned_users"] = churned;
    r["churn_seconds"] = std::round(churn_seconds * 1000) / 1000;
    r["presence_events"] = events.load();
    r["presence_events_per_second"] =
        std::llround(static_cast<double>(events.load()) / churn_seconds);
    r["offline_delay"] = offline_delay.summary();
    r["online_delay"] = online_delay.summary();
    r["reconnect_login"] = reconnect_login.summary();
    if (rss_before > 0 && rss_after >= rss_before) {
      r["server_bytes_per_subscription"] = std::llround(
          static_cast<double>(rss_after - rss_before) / static_cast<double>(users_ * contacts_));
    }
    r["return_failures"] = return_failures.load();
    if (!first_return_error.empty()) r["first_return_error"] = first_return_error;
    r["unexpected_closes"] = closes;
    r["cpu"] = std::move(cpu_result);
    if (churned > 0 && offline_delay.count() == 0) ctx.fail("no offline event reached a watcher");
    if (churned > 0 && online_delay.count() == 0) ctx.fail("no online event reached a watcher");
    if (return_failures > 0)
      ctx.fail(std::to_string(return_failures.load()) + " returning users failed to log in");
  }

 private:
  std::size_t users_ = 0;
  std::size_t contacts_ = 0;
  double rate_ = 0;
  double duration_ = 0;
  std::chrono::milliseconds away_{500};
  std::size_t concurrency_ = 0;
};

}  // namespace

PARLEY_BENCH_SCENARIO("presence", Presence);

}  // namespace parley::bench
