// presence with the group plugin: a common group is sharing, and losing it
// ends the subscription with one last offline event.
#include "presence_fixture.hpp"

namespace parley::test {
namespace {

class GroupPresenceTest : public PresenceTest {
 protected:
  std::string extra_plugins_yaml() const override { return "  - name: group\n"; }

  static std::string create_group(WsClient& owner, const User& member) {
    auto reply = owner.request({{"type", "group.create"},
                                {"name", "friends"},
                                {"members", json::array{json::string(member.id)}}});
    expect_ok(reply);
    return std::string(reply.at("group_id").as_string());
  }
};

TEST_F(GroupPresenceTest, ACommonGroupIsSharingAndLosingItEndsTheSubscription) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  const auto group = create_group(*a, bob);
  const auto seen = subscribe(*a, {&bob});
  expect_ok(seen);
  EXPECT_TRUE(entry(seen, bob).at("online").as_bool());
  expect_ok(subscribe(*b, {&alice}));
  expect_error(subscribe(*c, {&alice}), "forbidden");

  expect_ok(a->request({{"type", "group.remove"},
                        {"group_id", group},
                        {"members", json::array{json::string(bob.id)}}}));
  using Watch = std::pair<WsClient*, const User*>;
  for (const auto& [watcher, watched] : {Watch{a.get(), &bob}, Watch{b.get(), &alice}}) {
    auto last = presence_of(*watcher, *watched);
    ASSERT_TRUE(last);
    EXPECT_FALSE(last->at("online").as_bool());
    EXPECT_TRUE(last->at("last_active").is_null());
  }
  expect_error(subscribe(*a, {&bob}), "forbidden");
  // Ended for good: bob going away tells alice nothing.
  b.reset();
  EXPECT_FALSE(presence_of(*a, bob, 2500ms));
}

TEST_F(GroupPresenceTest, LeavingAGroupKeepsWatchesBackedByAOneToOneMessage) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto group = create_group(*a, bob);
  message(*b, alice);
  expect_ok(subscribe(*a, {&bob}));
  expect_ok(b->request({{"type", "group.leave"}, {"group_id", group}}));
  EXPECT_FALSE(presence_of(*a, bob, 1500ms)) << "they still share a conversation";
  b.reset();
  auto offline = presence_of(*a, bob);
  ASSERT_TRUE(offline);
  EXPECT_TRUE(offline->at("last_active").is_string());
}

}  // namespace
}  // namespace parley::test
