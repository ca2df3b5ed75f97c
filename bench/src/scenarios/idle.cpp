// Idle connections: N logged-in connections held open (the server pings them;
// Beast answers with pongs while a read is pending). Reports the server's
// resident memory per connection: (RSS after all are logged in and settled
// - RSS before they connected) / N. Registration happens before the first
// RSS reading, so only connections and sessions are counted.
#include <cmath>
#include <thread>

#include "../scenario.hpp"
#include "../system.hpp"

namespace parley::bench {
namespace {

class Idle final : public Scenario {
 public:
  std::string_view name() const override { return "idle"; }
  std::string_view description() const override {
    return "N idle logged-in connections: server memory per connection";
  }

  void configure(Options& o) override {
    connections_ = static_cast<std::size_t>(o.integer("connections", 1000, 1, 10'000'000));
    users_ = static_cast<std::size_t>(o.integer("users", 1000, 1, 10'000'000));
    settle_ = o.number("settle", 2, 0, 3600);
    hold_ = o.number("hold", 0, 0, 86400);
    concurrency_ = static_cast<std::size_t>(o.integer("concurrency", 256, 1, 1'000'000));
  }

  void run(Context& ctx) override {
    if (!ctx.server_pid)
      return ctx.fail("idle needs --server-pid (the parleyd process) to read its memory");
    const std::size_t users = std::min(connections_, users_);
    auto accounts = make_accounts(ctx.run_id, "idle", users);
    std::optional<Net> net;
    net.emplace(ctx.net);

    if (auto error = register_accounts(*net, accounts, ctx.timeout); !error.empty())
      return ctx.fail(error);
    // Let the registration connections close and the server settle.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto rss_before = rss_bytes(*ctx.server_pid);
    const auto self_before = rss_bytes(getpid());
    if (!rss_before)
      return ctx.fail("cannot read the RSS of process " + std::to_string(*ctx.server_pid));

    auto clients = net->add_clients(connections_);
    const auto login_start = Clock::now();
    // The first `users` connections log in by password (and get the tokens);
    // the rest by token, round-robin over the users.
    auto first = pipeline(users, concurrency_, ctx.timeout, [&](std::size_t i, Done done) {
      connect_and_login(*clients[i], accounts[i], false, std::move(done));
    });
    if (!first.error.empty()) return ctx.fail("password logins: " + first.error);
    auto rest =
        pipeline(connections_ - users, concurrency_, ctx.timeout, [&](std::size_t i, Done done) {
          const std::size_t c = users + i;
          connect_and_login(*clients[c], accounts[c % users], true, std::move(done));
        });
    if (!rest.error.empty()) {
      return ctx.fail("token logins: " + rest.error +
                      " (connections so far: " + std::to_string(users + rest.completed) +
                      "; file descriptor limits of parleyd and of this tool bound the count)");
    }
    const double login_seconds = seconds_since(login_start);

    std::this_thread::sleep_for(seconds_ms(settle_));
    const auto rss_after = rss_bytes(*ctx.server_pid);
    const auto self_after = rss_bytes(getpid());
    if (!rss_after)
      return ctx.fail("cannot read the RSS of process " + std::to_string(*ctx.server_pid));

    std::this_thread::sleep_for(seconds_ms(hold_));
    std::size_t open = 0;
    for (auto* c : clients) open += c->is_open() ? 1 : 0;
    const auto closes = net->unexpected_closes();
    const auto first_close = net->first_unexpected_close();
    net.reset();

    const auto delta = static_cast<double>(*rss_after) - static_cast<double>(*rss_before);
    const double per_connection = delta / static_cast<double>(connections_);
    auto& r = ctx.results;
    r["connections"] = connections_;
    r["users"] = users;
    r["server_rss_before_bytes"] = *rss_before;
    r["server_rss_after_bytes"] = *rss_after;
    r["server_rss_delta_bytes"] = std::llround(delta);
    r["bytes_per_connection"] = std::llround(per_connection);
    r["kib_per_connection"] = std::round(per_connection / 1024.0 * 100) / 100;
    if (self_before && self_after) {
      r["generator_bytes_per_connection"] =
          std::llround((static_cast<double>(*self_after) - static_cast<double>(*self_before)) /
                       static_cast<double>(connections_));
    }
    r["login_seconds"] = std::round(login_seconds * 1000) / 1000;
    r["logins_per_second"] = std::llround(static_cast<double>(connections_) / login_seconds);
    r["held_seconds"] = settle_ + hold_;
    r["still_open"] = open;
    r["unexpected_closes"] = closes;
    if (closes > 0 || open != connections_) {
      ctx.fail(std::to_string(connections_ - open) + " connections did not stay open" +
               (first_close.empty() ? std::string() : ", first: " + first_close));
    }
  }

 private:
  std::size_t connections_ = 0;
  std::size_t users_ = 0;
  double settle_ = 0;
  double hold_ = 0;
  std::size_t concurrency_ = 0;
};

}  // namespace

PARLEY_BENCH_SCENARIO("idle", Idle);

}  // namespace parley::bench
