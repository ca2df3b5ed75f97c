// Reconnect storm: U users each have K messages waiting (sent by a helper
// user while they were offline). Their connections are opened, then every
// one sends a token login at once. Measures the time from the first login
// sent until every connection has "synced", and checks that each received
// its K messages before "synced".
#include <cmath>
#include <thread>

#include "../histogram.hpp"
#include "../scenario.hpp"
#include "../system.hpp"

namespace parley::bench {
namespace {

class Reconnect final : public Scenario {
 public:
  std::string_view name() const override { return "reconnect"; }
  std::string_view description() const override {
    return "U users with K pending messages log in by token at once: time until all are synced";
  }

  void configure(Options& o) override {
    users_ = static_cast<std::size_t>(o.integer("users", 1000, 1, 10'000'000));
    // The server sends at most 1000 pending messages per login.
    messages_ = static_cast<std::size_t>(o.integer("messages", 10, 0, 1000));
    send_in_flight_ = static_cast<std::size_t>(o.integer("send-in-flight", 256, 1, 1'000'000));
    concurrency_ = static_cast<std::size_t>(o.integer("concurrency", 256, 1, 1'000'000));
  }

  void run(Context& ctx) override {
    auto accounts = make_accounts(ctx.run_id, "rc", users_ + 1);
    struct Seen {
      std::size_t messages = 0;  // the client's strand
      std::atomic<std::int64_t> at_synced{-1};
    };
    std::vector<Seen> seen(users_);
    Histogram to_synced;
    Countdown synced(users_);
    Countdown helper_in(1);
    Clock::time_point storm_start;
    // Declared after everything its callbacks use, stopped before they go.
    std::optional<Net> net;
    net.emplace(ctx.net);

    const auto setup_start = Clock::now();
    if (auto error = register_accounts(*net, accounts, ctx.timeout); !error.empty())
      return ctx.fail(error);
    Account& helper_account = accounts.back();

    // Tokens: one password login per user, then offline again.
    auto first = net->add_clients(users_);
    auto tokens = pipeline(users_, concurrency_, ctx.timeout, [&](std::size_t i, Done done) {
      connect_and_login(*first[i], accounts[i], false, std::move(done));
    });
    if (!tokens.error.empty()) return ctx.fail("password logins: " + tokens.error);
    for (auto* c : first) c->close();
    const auto close_deadline = Clock::now() + ctx.timeout;
    for (auto* c : first) {
      while (c->is_open() && Clock::now() < close_deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }

    // The helper sends K messages to each.
    Client& helper = net->add_client();
    connect_and_login(helper, helper_account, false, [&](const std::string& e) {
      if (e.empty()) {
        helper_in.done();
      } else {
        helper_in.fail(e);
      }
    });
    if (!helper_in.wait(ctx.timeout)) return ctx.fail("helper login: " + helper_in.error());
    const auto send_start = Clock::now();
    auto sent =
        pipeline(users_ * messages_, send_in_flight_, ctx.timeout, [&](std::size_t i, Done done) {
          const std::size_t user = i % users_;
          helper.request(Json{{"type", "send"},
                              {"to", accounts[user].user_id},
                              {"client_msg_id", "rc-" + std::to_string(i)},
                              {"message", "pending message " + std::to_string(i / users_)}},
                         [done = std::move(done)](const Json& reply) {
                           done(is_ok(reply) ? std::string() : "send: " + error_text(reply));
                         });
        });
    if (!sent.error.empty()) return ctx.fail("sending the pending messages: " + sent.error);
    const double send_seconds = seconds_since(send_start);
    helper.close();

    // Connections open, not logged in yet.
    auto clients = net->add_clients(users_);
    for (std::size_t i = 0; i < users_; ++i) {
      clients[i]->set_event_handler([&s = seen[i]](const Json& event) {
        if (get_string(event, "type") == "message") ++s.messages;
      });
    }
    auto connected = pipeline(users_, concurrency_, ctx.timeout, [&](std::size_t i, Done done) {
      clients[i]->connect(std::move(done));
    });
    if (!connected.error.empty()) return ctx.fail("connecting: " + connected.error);
    const double setup_seconds = seconds_since(setup_start);

    // The storm.
    CpuMeter cpu(ctx.server_pid);
    cpu.start();
    storm_start = Clock::now();
    for (std::size_t i = 0; i < users_; ++i) {
      clients[i]->login(Json{{"token", accounts[i].token}}, [&, i](const std::string& e) {
        if (!e.empty()) return synced.fail("user " + std::to_string(i) + ": " + e);
        seen[i].at_synced = static_cast<std::int64_t>(seen[i].messages);
        to_synced.record(Clock::now() - storm_start);
        synced.done();
      });
    }
    const bool all = synced.wait(ctx.timeout);
    const double storm_seconds = seconds_since(storm_start);
    auto cpu_result = cpu.stop();
    const auto closes = net->unexpected_closes();
    net.reset();

    std::size_t wrong = 0;
    std::size_t done_count = 0;
    for (const auto& s : seen) {
      const auto n = s.at_synced.load();
      if (n < 0) continue;
      ++done_count;
      if (static_cast<std::size_t>(n) != messages_) ++wrong;
    }
    auto& r = ctx.results;
    r["users"] = users_;
    r["messages_per_user"] = messages_;
    r["setup_seconds"] = std::round(setup_seconds * 1000) / 1000;
    r["pending_send_seconds"] = std::round(send_seconds * 1000) / 1000;
    r["synced_users"] = done_count;
    r["storm_seconds"] = std::round(storm_seconds * 1000) / 1000;
    r["logins_per_second"] = std::llround(static_cast<double>(done_count) / storm_seconds);
    r["pending_messages_per_second"] =
        std::llround(static_cast<double>(done_count * messages_) / storm_seconds);
    r["login_to_synced"] = to_synced.summary();
    r["wrong_message_counts"] = wrong;
    r["unexpected_closes"] = closes;
    r["cpu"] = std::move(cpu_result);
    if (!all)
      ctx.fail("not every user synced: " + (synced.error().empty() ? "timed out" : synced.error()));
    if (wrong > 0) {
      ctx.fail(std::to_string(wrong) + " users did not receive exactly " +
               std::to_string(messages_) + " messages before synced");
    }
    if (closes > 0) ctx.fail(std::to_string(closes) + " connections closed unexpectedly");
  }

 private:
  std::size_t users_ = 0;
  std::size_t messages_ = 0;
  std::size_t send_in_flight_ = 0;
  std::size_t concurrency_ = 0;
};

}  // namespace

PARLEY_BENCH_SCENARIO("reconnect", Reconnect);

}  // namespace parley::bench
