// presence end to end: a real parleyd with session and presence, real
// PostgreSQL, real WebSocket clients.
#include <filesystem>
#include <sstream>
#include <thread>

#include <pqxx/pqxx>

#include "presence_fixture.hpp"
#include "temp_dir.hpp"

namespace parley::test {
namespace {

TEST_F(PresenceTest, AnyoneMaySeeThemselves) {
  auto [alice, a] = online_user("alice");
  const auto reply = subscribe(*a, {&alice});
  expect_ok(reply);
  ASSERT_EQ(reply.at("presence").as_array().size(), 1u);
  const auto self = entry(reply, alice);
  EXPECT_TRUE(self.at("online").as_bool());
  EXPECT_TRUE(self.at("last_active").is_string());
}

TEST_F(PresenceTest, StrangersAreForbiddenAndAPartlyForbiddenListFailsWhole) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  message(*a, bob);
  expect_error(subscribe(*a, {&carol}), "forbidden");
  expect_error(subscribe(*a, {&alice, &bob, &carol}), "forbidden");
  // Nothing of the refused request was subscribed: bob going away tells alice nothing.
  b.reset();
  EXPECT_FALSE(presence_of(*a, bob, 2500ms));
}

TEST_F(PresenceTest, UnknownUserIsNotFound) {
  auto [alice, a] = online_user("alice");
  auto reply = a->request({{"type", "presence.subscribe"}, {"users", json::array{"987654321"}}});
  expect_error(reply, "not_found");
}

TEST_F(PresenceTest, MalformedRequestsAreBadRequest) {
  auto [alice, a] = online_user("alice");
  expect_error(a->request({{"type", "presence.subscribe"}}), "bad_request");
  expect_error(a->request({{"type", "presence.subscribe"}, {"users", json::array{1, 2}}}),
               "bad_request");
  expect_error(a->request({{"type", "presence.unsubscribe"}, {"users", "x"}}), "bad_request");
}

TEST_F(PresenceTest, AMessageEitherWayIsSharingButTypingIsNot) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  const std::string with_carol =
      alice.id < carol.id ? "d:" + alice.id + ":" + carol.id : "d:" + carol.id + ":" + alice.id;
  a->request({{"type", "typing"}, {"conversation", with_carol}});
  expect_error(subscribe(*a, {&carol}), "forbidden");

  message(*b, alice);
  const auto reply = subscribe(*a, {&bob});
  expect_ok(reply);
  EXPECT_TRUE(entry(reply, bob).at("online").as_bool());
  expect_ok(subscribe(*b, {&alice}));
}

TEST_F(PresenceTest, SubscriberSeesLastConnectionGoAfterGraceAndComeBack) {
  auto [alice, a] = online_user("alice");
  auto [bob, phone] = online_user("bob");
  auto laptop = connect();
  login(*laptop, bob);
  message(*a, bob);
  expect_ok(subscribe(*a, {&bob}));

  phone.reset();
  EXPECT_FALSE(presence_of(*a, bob, 2500ms)) << "bob still has his laptop";
  laptop.reset();
  auto offline = presence_of(*a, bob);
  ASSERT_TRUE(offline);
  EXPECT_FALSE(offline->at("online").as_bool());
  EXPECT_TRUE(offline->at("last_active").is_string());

  auto again = connect();
  login(*again, bob);
  auto online = presence_of(*a, bob);
  ASSERT_TRUE(online);
  EXPECT_TRUE(online->at("online").as_bool());
  EXPECT_GE(online->at("last_active").as_string(), offline->at("last_active").as_string());
}

TEST_F(PresenceTest, SubscriptionsBelongToTheirConnection) {
  auto [alice, watching] = online_user("alice");
  auto other = connect();
  login(*other, alice);
  auto [bob, b] = online_user("bob");
  message(*watching, bob);
  expect_ok(subscribe(*watching, {&bob}));
  b.reset();
  EXPECT_TRUE(presence_of(*watching, bob));
  EXPECT_FALSE(presence_of(*other, bob, 500ms));

  // Unsubscribed, the watching connection hears nothing more.
  expect_ok(watching->request(
      {{"type", "presence.unsubscribe"}, {"users", json::array{json::string(bob.id)}}}));
  auto back = connect();
  login(*back, bob);
  EXPECT_FALSE(presence_of(*watching, bob, 1500ms));
}

class GracePresenceTest : public PresenceTest {
 protected:
  std::string presence_config() const override {
    return "      offline_after_seconds: 600\n      grace_seconds: 2\n";
  }
};

TEST_F(GracePresenceTest, ReconnectWithinTheGracePeriodCausesNoEvent) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  message(*a, bob);
  expect_ok(subscribe(*a, {&bob}));
  b.reset();
  auto phone = connect();
  login(*phone, bob);
  EXPECT_FALSE(presence_of(*a, bob, 3s)) << "a reconnect within grace_seconds is no flap";
  phone.reset();
  auto offline = presence_of(*a, bob);
  ASSERT_TRUE(offline);
  EXPECT_FALSE(offline->at("online").as_bool());
}

class IdlePresenceTest : public PresenceTest {
 protected:
  std::string presence_config() const override {
    return "      offline_after_seconds: 1\n      grace_seconds: 1\n";
  }
};

TEST_F(IdlePresenceTest, SilentConnectionGoesOfflineAndAPingBringsItBack) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  message(*b, alice);
  const auto reply = subscribe(*a, {&bob});
  expect_ok(reply);
  if (entry(reply, bob).at("online").as_bool()) {
    auto idle = presence_of(*a, bob);
    ASSERT_TRUE(idle) << "bob was silent for longer than offline_after";
    EXPECT_FALSE(idle->at("online").as_bool());
  }
  for (int round = 0; round < 2; ++round) {
    expect_ok(b->request({{"type", "ping"}}));
    auto back = presence_of(*a, bob);
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->at("online").as_bool());
    auto idle = presence_of(*a, bob);
    ASSERT_TRUE(idle);
    EXPECT_FALSE(idle->at("online").as_bool());
    EXPECT_EQ(idle->at("last_active"), back->at("last_active"));
  }
  // The connection stayed open throughout and still works.
  expect_ok(b->request({{"type", "ping"}}));
}

class StoredPresenceTest : public PresenceTest {
 protected:
  std::string presence_config() const override {
    return "      grace_seconds: 1\n      flush_interval_seconds: " + flush_interval() + "\n";
  }
  virtual std::string flush_interval() const { return "3600"; }

  // Alice has seen bob come and go, and shares a conversation with carol,
  // who never connected. Returns bob's last_active as alice last saw it.
  json::value bob_came_and_went(User& alice, User& bob, User& carol) {
    auto a = connect();
    alice = register_user(*a, "alice");
    login(*a, alice);
    auto b = connect();
    bob = register_user(*b, "bob");
    login(*b, bob);
    auto c = connect();
    carol = register_user(*c, "carol");
    message(*a, bob);
    message(*a, carol);
    const auto seen = subscribe(*a, {&bob, &carol});
    expect_ok(seen);
    EXPECT_TRUE(entry(seen, carol).at("last_active").is_null());
    b.reset();
    const auto offline = presence_of(*a, bob);
    if (!offline) {
      ADD_FAILURE() << "bob did not go offline";
      return nullptr;
    }
    return offline->at("last_active");
  }

  void expect_remembered(User& alice, const User& bob, const User& carol,
                         const json::value& bob_seen) {
    auto again = connect();
    login(*again, alice);
    const auto after = subscribe(*again, {&bob, &carol});
    expect_ok(after);
    EXPECT_FALSE(entry(after, bob).at("online").as_bool());
    EXPECT_EQ(entry(after, bob).at("last_active"), bob_seen);
    EXPECT_TRUE(entry(after, carol).at("last_active").is_null());
  }
};

TEST_F(StoredPresenceTest, LastActiveIsWrittenAtStopAndSurvivesARestart) {
  User alice, bob, carol;
  const auto bob_seen = bob_came_and_went(alice, bob, carol);
  ASSERT_TRUE(bob_seen.is_string());
  // The flush interval is an hour: only the write at stop can keep it.
  ASSERT_EQ(server_->stop(), 0) << server_->log();
  server_->start();
  expect_remembered(alice, bob, carol, bob_seen);
}

class FlushedPresenceTest : public StoredPresenceTest {
 protected:
  std::string flush_interval() const override { return "1"; }
};

TEST_F(FlushedPresenceTest, LastActiveWrittenByAPeriodicFlushSurvivesAKill) {
  User alice, bob, carol;
  const auto bob_seen = bob_came_and_went(alice, bob, carol);
  ASSERT_TRUE(bob_seen.is_string());
  // Await the periodic write, then kill: nothing runs at exit.
  pqxx::connection conn(database_url_);
  bool stored = false;
  for (int i = 0; i < 100 && !stored; ++i) {
    pqxx::read_transaction tx(conn);
    stored =
        !tx.exec_params("SELECT 1 FROM presence_last_active WHERE user_id = $1", bob.id).empty();
    if (!stored) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(stored) << "no flush within 5 s";
  server_->kill_hard();
  server_->start();
  expect_remembered(alice, bob, carol, bob_seen);
}

class CappedPresenceTest : public PresenceTest {
 protected:
  std::string presence_config() const override {
    return "      max_subscriptions_per_connection: 2\n";
  }
};

TEST_F(CappedPresenceTest, SubscriptionsPastTheCapAreTooLargeAndAddNothing) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  message(*a, bob);
  message(*a, carol);
  expect_error(subscribe(*a, {&alice, &bob, &carol}), "too_large");
  expect_ok(subscribe(*a, {&alice, &bob}));
  expect_ok(subscribe(*a, {&bob}));  // held already: no new subscription
  expect_error(subscribe(*a, {&carol}), "too_large");
  // The refused carol is not watched; bob is.
  c.reset();
  EXPECT_FALSE(presence_of(*a, carol, 2500ms));
  expect_ok(
      a->request({{"type", "presence.unsubscribe"}, {"users", json::array{json::string(bob.id)}}}));
  expect_ok(subscribe(*a, {&carol}));
  // The cap is per connection.
  auto other = connect();
  login(*other, alice);
  expect_ok(subscribe(*other, {&alice, &bob}));
}

}  // namespace
}  // namespace parley::test

namespace parley::test {
namespace {

// The kernel tests' journal plugin records presence.changed from the bus.
class PublishedPresenceTest : public PresenceTest {
 protected:
  std::string extra_plugins_yaml() const override {
    return std::string("  - name: alpha\n    library: ") + JOURNAL_PLUGIN_PATH +
           "\n    config:\n      journal: " + journal().string() +
           "\n      record: [presence.changed]\n";
  }
  std::filesystem::path journal() const { return dir_.path() / "journal"; }

  // The presence.changed payloads about `user` recorded so far, once there
  // are `count` of them (or what there is after 10 s).
  std::vector<json::object> changes_of(const User& user, std::size_t count) const {
    std::vector<json::object> found;
    for (int i = 0; i < 200; ++i) {
      found.clear();
      // Complete lines only: the journal may be caught mid-write.
      std::string text = read_file(journal());
      text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
      std::istringstream lines(text);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("{\"event\":\"presence.changed\"", 0) != 0) continue;
        auto event = json::parse(line.substr(0, line.rfind(' '))).as_object();
        auto payload = event.at("payload").as_object();
        if (payload.at("user_id").as_string() == user.id) found.push_back(std::move(payload));
      }
      if (found.size() >= count) return found;
      std::this_thread::sleep_for(50ms);
    }
    return found;
  }

  TempDir dir_;
};

TEST_F(PublishedPresenceTest, EveryTransitionIsPublishedOnceInOrder) {
  auto [bob, b] = online_user("bob");
  expect_ok(b->request({{"type", "ping"}}));
  // Presence asks the gateway whether the user is connected when it
  // handles the event: a connection closed before that is never seen
  // online, so the test waits for the online transition before closing.
  ASSERT_EQ(changes_of(bob, 1).size(), 1u);
  b.reset();
  const auto changes = changes_of(bob, 2);
  ASSERT_EQ(changes.size(), 2u) << "the journal:\n" << read_file(journal());
  EXPECT_TRUE(changes[0].at("online").as_bool());
  EXPECT_FALSE(changes[1].at("online").as_bool());
  EXPECT_TRUE(changes[1].at("last_active").is_string());
  EXPECT_GE(changes[1].at("last_active").as_string(), changes[0].at("last_active").as_string());
}

}  // namespace
}  // namespace parley::test

namespace parley::test {
namespace {

// parleyd's /metrics value of `name`, once it equals `expected` (or the
// last value read after 10 s; -1 when absent).
double await_metric(int port, const std::string& name, double expected) {
  double value = -1;
  for (int i = 0; i < 200; ++i) {
    const auto metrics = http_get(port, "/metrics");
    std::istringstream lines(metrics.body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(name + " ", 0) == 0) value = std::stod(line.substr(name.size() + 1));
    }
    if (value == expected) return value;
    std::this_thread::sleep_for(50ms);
  }
  return value;
}

TEST_F(PresenceTest, SubscriptionsEndWhenTheirConnectionCloses) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  message(*a, bob);
  expect_ok(subscribe(*a, {&alice, &bob}));
  expect_ok(subscribe(*b, {&alice}));
  EXPECT_EQ(await_metric(server_->port(), "parley_presence_subscriptions", 3), 3);
  a.reset();
  EXPECT_EQ(await_metric(server_->port(), "parley_presence_subscriptions", 1), 1);
  // Logging out of one's last connection ends its subscriptions too.
  expect_ok(b->request({{"type", "logout"}}));
  EXPECT_EQ(await_metric(server_->port(), "parley_presence_subscriptions", 0), 0);
}

TEST_F(PresenceTest, ALoggedOutConnectionHearsNoMoreEvenAsSomeoneElse) {
  auto [alice, watching] = online_user("alice");
  auto [carol, c] = online_user("carol");
  auto phone = connect();  // alice stays online on another connection
  login(*phone, alice);
  auto [bob, b] = online_user("bob");
  message(*watching, bob);
  expect_ok(subscribe(*watching, {&bob}));
  EXPECT_EQ(await_metric(server_->port(), "parley_presence_subscriptions", 1), 1);

  expect_ok(watching->request({{"type", "logout"}}));
  EXPECT_EQ(await_metric(server_->port(), "parley_presence_subscriptions", 0), 0);
  login(*watching, carol);
  b.reset();
  auto back = connect();
  login(*back, bob);
  // Carol shares nothing with bob: her connection, alice's before, hears
  // neither bob's leaving nor his return, while alice's phone still may
  // subscribe and does hear it.
  expect_ok(subscribe(*phone, {&bob}));
  back.reset();
  EXPECT_TRUE(presence_of(*phone, bob));
  EXPECT_FALSE(presence_of(*watching, bob, 500ms));
}

}  // namespace
}  // namespace parley::test
