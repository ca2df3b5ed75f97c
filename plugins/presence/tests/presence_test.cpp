// presence end to end: a real parleyd with session and presence, real
// PostgreSQL, real WebSocket clients.
#include "presence_fixture.hpp"

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

TEST_F(PresenceTest, LastActiveSurvivesARestartAndIsNullForSomeoneNeverConnected) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto c = connect();
  User carol = register_user(*c, "carol");
  message(*a, bob);
  message(*a, carol);
  const auto before = subscribe(*a, {&bob, &carol});
  expect_ok(before);
  const auto bob_seen = entry(before, bob).at("last_active");
  ASSERT_TRUE(bob_seen.is_string());
  EXPECT_TRUE(entry(before, carol).at("last_active").is_null());

  b.reset();
  ASSERT_TRUE(presence_of(*a, bob));
  a.reset();
  c.reset();
  ASSERT_EQ(server_->stop(), 0) << server_->log();
  server_->start();

  auto again = connect();
  login(*again, alice);
  const auto after = subscribe(*again, {&bob, &carol});
  expect_ok(after);
  EXPECT_FALSE(entry(after, bob).at("online").as_bool());
  EXPECT_EQ(entry(after, bob).at("last_active"), bob_seen);
  EXPECT_TRUE(entry(after, carol).at("last_active").is_null());
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
  expect_ok(subscribe(*a, {&bob})) << "held already: no new subscription";
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
