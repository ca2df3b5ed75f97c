// What the kernel gives presence-like plugins, seen through real logins: the
// user online/offline/active events, fan-out to many users, and logins that
// end together. The kernel tests' journal plugin records the bus and offers
// a request that calls Gateway::deliver_many.
#include <gmock/gmock.h>

#include <thread>

#include "session_fixture.hpp"
#include "temp_dir.hpp"

namespace parley::test {
namespace {

using ::testing::HasSubstr;

class GatewayEventsTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    auto options = server_options();
    // A long interval: only logins publish activity during a test.
    options.server_yaml = "  activity_interval_ms: 3600000\n";
    options.plugins_yaml +=
        std::string("  - name: alpha\n    library: ") + JOURNAL_PLUGIN_PATH +
        "\n    config:\n      journal: " + journal().string() +
        // One prefix subscription: the events of all three names in publish order.
        "\n      record: [gateway.user.*]\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }
  std::filesystem::path journal() const { return dir_.path() / "journal"; }

  // The recorded events of `user_id`, in order, as "online"/"offline"/"active".
  std::vector<std::string> events_of(const std::string& user_id) const {
    std::vector<std::string> out;
    std::istringstream in(read_file(journal()));
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"user_id\":\"" + user_id + "\"") == std::string::npos) continue;
      for (const char* kind : {"online", "offline", "active"}) {
        if (line.find(std::string("gateway.user.") + kind + "\"") != std::string::npos)
          out.emplace_back(kind);
      }
    }
    return out;
  }
  // Waits until `user_id`'s recorded events are `expected`.
  bool await_events(const std::string& user_id, const std::vector<std::string>& expected) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (events_of(user_id) == expected) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  TempDir dir_;
};

TEST_F(GatewayEventsTest, FirstLoginIsOnlineAndLastCloseIsOffline) {
  auto phone = connect();
  User alice = register_user(*phone, "alice");
  login(*phone, alice);
  ASSERT_TRUE(await_events(alice.id, {"online", "active"})) << read_file(journal());
  auto laptop = connect();
  login_with_token(*laptop, alice);
  // The second device: activity, but no second "online".
  ASSERT_TRUE(await_events(alice.id, {"online", "active", "active"})) << read_file(journal());
  phone.reset();
  // Wait for a later event to prove nothing was published for the phone.
  auto bob_client = connect();
  User bob = register_user(*bob_client, "bob");
  login(*bob_client, bob);
  ASSERT_TRUE(await_events(bob.id, {"online", "active"}));
  EXPECT_EQ(events_of(alice.id), (std::vector<std::string>{"online", "active", "active"}));
  laptop.reset();
  EXPECT_TRUE(await_events(alice.id, {"online", "active", "active", "offline"}))
      << read_file(journal());
}

TEST_F(GatewayEventsTest, ManyFramesWithinTheIntervalPublishNoMoreActivity) {
  auto [alice, a] = online_user("alice");
  for (int i = 0; i < 50; ++i) expect_ok(a->request({{"type", "ping"}}));
  a.reset();
  ASSERT_TRUE(await_events(alice.id, {"online", "active", "offline"})) << read_file(journal());
}

TEST_F(GatewayEventsTest, LogoutIsOfflineWhenItWasTheLastConnection) {
  auto [alice, a] = online_user("alice");
  expect_ok(a->request({{"type", "logout"}}));
  EXPECT_TRUE(await_events(alice.id, {"online", "active", "offline"})) << read_file(journal());
}

TEST_F(GatewayEventsTest, ACloseDuringLoginLeavesTheUserOffline) {
  auto first = connect();
  User alice = register_user(*first, "alice");
  first.reset();
  for (int i = 0; i < 10; ++i) {
    auto c = connect();
    c->send({{"type", "login"}, {"id", "l"}, {"email", alice.email}, {"password", alice.password}});
  }
  // Whatever each login reached, every online has its offline.
  auto bob_client = connect();
  User bob = register_user(*bob_client, "bob");
  login(*bob_client, bob);
  ASSERT_TRUE(await_events(bob.id, {"online", "active"}));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  auto balanced = [&] {
    const auto events = events_of(alice.id);
    return std::count(events.begin(), events.end(), "online") ==
           std::count(events.begin(), events.end(), "offline");
  };
  while (!balanced() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(balanced()) << read_file(journal());
  EXPECT_FALSE(server_->log().find("did not answer") != std::string::npos) << server_->log();
}

TEST_F(GatewayEventsTest, DeliverManyReachesEachConnectionOnceAndNotTheSender) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto bob_laptop = connect();
  login_with_token(*bob_laptop, bob);
  auto [carol, c] = online_user("carol");
  expect_ok(a->request({{"type", "alpha.deliver"},
                        {"users", json::array{alice.id, bob.id, carol.id, bob.id}},
                        {"text", "hello all"}}));
  for (WsClient* client : {b.get(), bob_laptop.get(), c.get()}) {
    auto event = client->next_event("delivered");
    ASSERT_TRUE(event);
    EXPECT_EQ(event->at("text").as_string(), "hello all");
    EXPECT_TRUE(client->no_event("delivered")) << "delivered twice";
  }
  EXPECT_TRUE(a->no_event("delivered")) << "the sending connection is excluded";
}

TEST_F(GatewayEventsTest, LogoutEndsEveryConnectionOfTheToken) {
  auto [alice, phone] = online_user("alice");
  auto laptop = connect();
  login_with_token(*laptop, alice);
  auto [bob, b] = online_user("bob");
  expect_ok(phone->request({{"type", "logout"}}));
  auto ended = laptop->next_event("session_ended");
  ASSERT_TRUE(ended) << "the token's other connection was not told";
  EXPECT_EQ(ended->at("reason").as_string(), "logged_out");
  expect_error(laptop->request({{"type", "conversations"}}), "unauthenticated");
  expect_ok(send(*b, alice, "after logout", "x1"));
  EXPECT_TRUE(laptop->no_event("message")) << "a logged-out connection received a message";
}

}  // namespace
}  // namespace parley::test
