// Groups over real WebSockets and PostgreSQL: the group.* requests, roles and
// their permissions, the size cap (also under racing adds), the group events
// and the system messages that record every change.
#include <algorithm>
#include <atomic>
#include <optional>
#include <set>
#include <thread>

#include "group_fixture.hpp"

namespace parley::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using GroupMembershipTest = GroupTest;

TEST_F(GroupMembershipTest, CreateTellsEveryMemberAndWritesASystemMessage) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  // Duplicates and the creator are ignored.
  const auto group = create_group(*a, "friends", ids({&bob, &carol, &bob, &alice}));
  ASSERT_FALSE(group.empty());
  for (auto* client : {a.get(), b.get(), c.get()}) {
    auto event = client->next_event("group");
    ASSERT_TRUE(event);
    EXPECT_EQ(event->at("group_id").as_string(), group);
    EXPECT_EQ(event->at("change").as_string(), "created");
    EXPECT_EQ(event->at("by").as_string(), alice.id);
    EXPECT_THAT(strings(event->at("user_ids")), ElementsAre(alice.id, bob.id, carol.id));
  }
  auto system = b->next_event("message");
  ASSERT_TRUE(system);
  EXPECT_EQ(system->at("eventType").as_string(), "system");
  EXPECT_EQ(system->at("conversation").as_string(), "g:" + group);
  EXPECT_EQ(system->at("group_id").as_string(), group);
  EXPECT_EQ(system->at("sender_id").as_string(), alice.id);
  EXPECT_EQ(system->at("seq").as_int64(), 1);
  EXPECT_FALSE(system->contains("recipient_id"));
  // Names, not ids: written in by session at the time of the change.
  EXPECT_EQ(system->at("message").as_string(), "alice created the group \"friends\"");

  auto reply = info(*b, group);
  expect_ok(reply);
  EXPECT_EQ(reply.at("name").as_string(), "friends");
  EXPECT_EQ(reply.at("max_members").as_int64(), 256);
  EXPECT_THAT(roster(reply),
              ElementsAre(alice.id + ":owner", bob.id + ":member", carol.id + ":member"));
  auto list = c->request({{"type", "group.list"}});
  expect_ok(list);
  ASSERT_EQ(list.at("groups").as_array().size(), 1u);
  EXPECT_EQ(list.at("groups").at(0).at("group_id").as_string(), group);
  EXPECT_EQ(list.at("groups").at(0).at("name").as_string(), "friends");

  auto h = history(*c, group);
  expect_ok(h);
  ASSERT_EQ(h.at("messages").as_array().size(), 1u);
  EXPECT_EQ(h.at("messages").at(0).at("eventType").as_string(), "system");
  EXPECT_EQ(h.at("messages").at(0).at("message_id"), system->at("message_id"));
  EXPECT_EQ(h.at("messages").at(0).at("timestamp"), system->at("timestamp"));

  const auto changed = wait_for_journal("group.changed");
  EXPECT_THAT(changed, HasSubstr("\"change\":\"created\""));
  EXPECT_THAT(changed, HasSubstr("\"seq\":1"));
}

TEST_F(GroupMembershipTest, BadNamesAndFieldsAreBadRequests) {
  auto [alice, a] = online_user("alice");
  expect_error(create(*a, "", {}), "bad_request");
  expect_error(create(*a, std::string(101, 'x'), {}), "bad_request");
  expect_ok(create(*a, std::string(100, 'x'), {}));
  // 100 code points of two bytes each are within the limit.
  std::string umlauts;
  for (int i = 0; i < 100; ++i) umlauts += "\xc3\xa4";
  expect_ok(create(*a, umlauts, {}));
  expect_error(a->request({{"type", "group.create"}, {"name", "x"}, {"members", "nope"}}),
               "bad_request");
  expect_error(a->request({{"type", "group.create"}, {"name", 7}}), "bad_request");
  // Names are shown to every member and copied into system messages.
  for (const std::string name :
       {"line\nbreak", "bell\x07", "c1\xc2\x85", "rtl\xe2\x80\xae", "isolate\xe2\x81\xa6", "   "}) {
    expect_error(create(*a, name, {}), "bad_request");
  }
  expect_ok(create(*a, "caf\xc3\xa9 \xe2\x80\x94 ok", {}));
  const auto group = create_group(*a, "g", {});
  // add and remove must name someone; create may name no one.
  expect_error(a->request({{"type", "group.add"}, {"group_id", group}}), "bad_request");
  expect_error(a->request({{"type", "group.remove"}, {"group_id", group}, {"members", nullptr}}),
               "bad_request");
  expect_error(a->request({{"type", "group.role"},
                           {"group_id", group},
                           {"user_id", alice.id},
                           {"role", "emperor"}}),
               "bad_request");
}

TEST_F(GroupMembershipTest, UnknownUsersAreNotFoundAndNothingChanges) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  json::array with_stranger = ids({&bob});
  with_stranger.push_back("999999");
  expect_error(create(*a, "nope", with_stranger), "not_found");
  EXPECT_TRUE(b->no_event("group"));
  expect_ok(a->request({{"type", "group.list"}}));
  EXPECT_TRUE(a->request({{"type", "group.list"}}).at("groups").as_array().empty());

  const auto group = create_group(*a, "g", {});
  auto [carol, c] = online_user("carol");
  json::array mixed = ids({&carol});
  mixed.push_back("not-an-id");
  expect_error(add(*a, group, mixed), "not_found");
  json::array unknown = ids({&carol});
  unknown.push_back("888888");
  expect_error(add(*a, group, unknown), "not_found");
  expect_error(remove(*a, group, unknown), "not_found");
  EXPECT_THAT(roster(info(*a, group)), ElementsAre(alice.id + ":owner"));
  EXPECT_TRUE(c->no_event("group"));
  EXPECT_EQ(history(*a, group).at("messages").as_array().size(), 1u);
}

TEST_F(GroupMembershipTest, OwnerAndAdminsAddAndRemoveMembersOnlyTheOwnerRemovesAdmins) {
  auto [owner, o] = online_user("owner");
  auto [admin, ad] = online_user("admin");
  auto [member, m] = online_user("member");
  auto [dave, d] = online_user("dave");
  auto [erin, e] = online_user("erin");
  auto [other_admin, oa] = online_user("other");
  const auto group = create_group(*o, "team", ids({&admin, &member, &other_admin}));
  expect_ok(set_role(*o, group, admin, "admin"));
  expect_ok(set_role(*o, group, other_admin, "admin"));

  // A plain member can neither add, remove nor change roles.
  expect_error(add(*m, group, ids({&dave})), "forbidden");
  expect_error(remove(*m, group, ids({&admin})), "forbidden");
  expect_error(set_role(*m, group, admin, "member"), "forbidden");
  // An admin adds and removes plain members but not admins, nor the owner,
  // and changes no roles.
  expect_ok(add(*ad, group, ids({&dave, &erin})));
  auto added = d->next_event("group");
  ASSERT_TRUE(added);
  EXPECT_EQ(added->at("change").as_string(), "added");
  EXPECT_EQ(added->at("by").as_string(), admin.id);
  EXPECT_THAT(strings(added->at("user_ids")), ElementsAre(dave.id, erin.id));
  expect_ok(remove(*ad, group, ids({&erin})));
  expect_error(remove(*ad, group, ids({&other_admin})), "forbidden");
  expect_error(remove(*ad, group, ids({&owner})), "forbidden");
  expect_error(remove(*ad, group, ids({&dave, &owner})), "forbidden");
  expect_error(set_role(*ad, group, dave, "admin"), "forbidden");
  // The owner removes admins; nobody removes the owner, not even the owner.
  expect_error(remove(*o, group, ids({&owner})), "forbidden");
  expect_error(set_role(*o, group, owner, "member"), "bad_request");
  expect_ok(remove(*o, group, ids({&other_admin})));
  // Existing members in an add and non-members in a remove are ignored.
  expect_ok(add(*o, group, ids({&dave, &member})));
  expect_ok(remove(*o, group, ids({&erin})));
  EXPECT_THAT(roster(info(*o, group)), ElementsAre(owner.id + ":owner", admin.id + ":admin",
                                                   member.id + ":member", dave.id + ":member"));
  // Roles: the owner demotes and promotes.
  expect_ok(set_role(*o, group, admin, "member"));
  expect_error(add(*ad, group, ids({&erin})), "forbidden");
  expect_error(set_role(*o, group, erin, "admin"), "not_found");

  // Every change is a system message, in order.
  auto h = history(*o, group);
  const auto& texts = h.at("messages").as_array();
  ASSERT_EQ(texts.size(), 7u);
  EXPECT_EQ(texts.at(1).at("message").as_string(), "owner made admin an admin");
  EXPECT_EQ(texts.at(3).at("message").as_string(), "admin added dave and erin");
  EXPECT_EQ(texts.at(4).at("message").as_string(), "admin removed erin");
  EXPECT_EQ(texts.at(6).at("message").as_string(), "owner made admin a member");
  std::vector<std::string> kinds;
  for (const auto& msg : h.at("messages").as_array()) {
    EXPECT_EQ(msg.at("eventType").as_string(), "system");
    kinds.push_back(std::string(msg.at("sender_id").as_string()));
  }
  // created, 2 roles, add, remove, remove, role.
  EXPECT_THAT(kinds,
              ElementsAre(owner.id, owner.id, owner.id, admin.id, admin.id, owner.id, owner.id));
}

TEST_F(GroupMembershipTest, EventsReachActorAddedRemovedAndMembers) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  auto [dave, d] = online_user("dave");
  const auto group = create_group(*a, "g", ids({&bob}));
  for (auto* client : {a.get(), b.get()}) ASSERT_TRUE(client->next_event("group"));
  expect_ok(add(*a, group, ids({&carol})));
  for (auto* client : {a.get(), b.get(), c.get()}) {
    auto event = client->next_event("group");
    ASSERT_TRUE(event);
    EXPECT_EQ(event->at("change").as_string(), "added");
  }
  EXPECT_TRUE(d->no_event("group"));
  expect_ok(remove(*a, group, ids({&bob})));
  for (auto* client : {a.get(), b.get(), c.get()}) {
    auto event = client->next_event("group");
    ASSERT_TRUE(event);
    EXPECT_EQ(event->at("change").as_string(), "removed");
    EXPECT_THAT(strings(event->at("user_ids")), ElementsAre(bob.id));
  }
  expect_ok(leave(*c, group));
  for (auto* client : {a.get(), c.get()}) {
    auto event = client->next_event("group");
    ASSERT_TRUE(event);
    EXPECT_EQ(event->at("change").as_string(), "left");
    EXPECT_EQ(event->at("by").as_string(), carol.id);
  }
  EXPECT_TRUE(b->no_event("group")) << "bob was removed before carol left";
}

TEST_F(GroupMembershipTest, NonMembersAreForbiddenUnknownGroupsNotFound) {
  auto [alice, a] = online_user("alice");
  auto [mallory, m] = online_user("mallory");
  const auto group = create_group(*a, "private", {});
  expect_error(info(*m, group), "forbidden");
  expect_error(gsend(*m, group, "let me in", "x1"), "forbidden");
  expect_error(history(*m, group), "forbidden");
  expect_error(
      m->request(
          {{"type", "mark"}, {"conversation", "g:" + group}, {"status", "read"}, {"seq", 1}}),
      "forbidden");
  expect_error(m->request({{"type", "typing"}, {"conversation", "g:" + group}}), "forbidden");
  expect_error(add(*m, group, ids({&mallory})), "forbidden");
  expect_error(leave(*m, group), "forbidden");
  for (const std::string unknown : {"424242", "abc"}) {
    expect_error(info(*a, unknown), "not_found");
    expect_error(gsend(*a, unknown, "hello?", "u-" + unknown), "not_found");
    expect_error(add(*a, unknown, ids({&mallory})), "not_found");
    expect_error(leave(*a, unknown), "not_found");
  }
  expect_error(history(*a, "424242"), "not_found");
}

class SmallGroupTest : public GroupTest {
 protected:
  std::string group_config() const override { return "      max_members: 3\n"; }
};

TEST_F(SmallGroupTest, CreateAndAddBeyondTheCapAreGroupFull) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  auto [dave, d] = online_user("dave");
  expect_error(create(*a, "big", ids({&bob, &carol, &dave})), "group_full");
  EXPECT_TRUE(b->no_event("group"));
  const auto group = create_group(*a, "small", ids({&bob}));
  EXPECT_EQ(info(*a, group).at("max_members").as_int64(), 3);
  expect_error(add(*a, group, ids({&carol, &dave})), "group_full");
  EXPECT_THAT(roster(info(*a, group)), ElementsAre(alice.id + ":owner", bob.id + ":member"));
  expect_ok(add(*a, group, ids({&carol})));
  expect_error(add(*a, group, ids({&dave})), "group_full");
  // Adding someone already in is no change, so not over the cap.
  expect_ok(add(*a, group, ids({&carol})));
  EXPECT_EQ(roster(info(*a, group)).size(), 3u);
}

class RacingAddsTest : public GroupTest {
 protected:
  std::string group_config() const override { return "      max_members: 10\n"; }
};

TEST_F(RacingAddsTest, ConcurrentAddsFromManyConnectionsNeverExceedTheCap) {
  auto [owner, o] = online_user("owner");
  constexpr int kAdders = 20;
  std::vector<User> newcomers;
  std::vector<std::unique_ptr<WsClient>> adders;
  for (int i = 0; i < kAdders; ++i) {
    auto client = connect();
    newcomers.push_back(register_user(*client, "new" + std::to_string(i)));
    auto admin_connection = connect();
    login(*admin_connection, owner);
    adders.push_back(std::move(admin_connection));
  }
  const auto group = create_group(*o, "race", {});
  std::vector<json::object> replies(kAdders);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kAdders; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kAdders) std::this_thread::yield();
      replies[i] = add(*adders[i], group, ids({&newcomers[i]}));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> added;
  int full = 0;
  for (int i = 0; i < kAdders; ++i) {
    if (replies[i].at("type").as_string() == "ok") {
      added.insert(newcomers[i].id);
    } else {
      expect_error(replies[i], "group_full");
      ++full;
    }
  }
  EXPECT_EQ(added.size(), 9u) << "the owner and nine others fill the group";
  EXPECT_EQ(full, kAdders - 9);
  const auto members = roster(info(*o, group));
  ASSERT_EQ(members.size(), 10u);
  std::set<std::string> in_group;
  for (const auto& m : members) in_group.insert(m.substr(0, m.find(':')));
  for (const auto& id : added) EXPECT_TRUE(in_group.contains(id));
  // One system message per successful add, none for the refused ones.
  EXPECT_EQ(history(*o, group).at("messages").as_array().size(), 10u);
}

class GroupsPerUserTest : public GroupTest {
 protected:
  std::string group_config() const override { return "      max_groups_per_user: 2\n"; }

  static std::size_t groups_of(WsClient& c) {
    return c.request({{"type", "group.list"}}).at("groups").as_array().size();
  }
};

// Nobody is put into more groups than max_groups_per_user, by creating them
// or by being added: the change is refused whole (too_large) and nobody
// hears of it.
TEST_F(GroupsPerUserTest, CreatingOrAddingBeyondAUsersCapIsTooLargeAndChangesNothing) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  const auto first = create_group(*a, "one", ids({&bob}));
  create_group(*a, "two", {});
  auto refused = create(*a, "three", {});
  expect_error(refused, "too_large");
  EXPECT_EQ(refused.at("reason").as_string(), "max_groups_per_user");
  EXPECT_EQ(groups_of(*a), 2u);

  // Bob is in one group: Carol may put him into one more, not two.
  const auto carols = create_group(*c, "carol's", ids({&bob}));
  expect_error(create(*c, "again", ids({&bob})), "too_large");
  EXPECT_EQ(groups_of(*c), 1u);
  const auto plain = create_group(*c, "plain", {});
  expect_error(add(*c, plain, ids({&bob})), "too_large");
  EXPECT_THAT(roster(info(*c, plain)), ElementsAre(carol.id + ":owner"));
  EXPECT_EQ(groups_of(*b), 2u);
  while (auto event = b->next_event("group", 300ms)) {
    EXPECT_NE(event->at("group_id").as_string(), plain) << json::serialize(*event);
  }

  // Leaving, or being removed, makes room.
  expect_ok(leave(*b, carols));
  expect_ok(add(*c, plain, ids({&bob})));
  expect_ok(remove(*a, first, ids({&bob})));
  expect_ok(leave(*a, first));
  create_group(*a, "three", ids({&bob}));
  EXPECT_EQ(groups_of(*a), 2u);
  EXPECT_EQ(groups_of(*b), 2u);
}

TEST_F(GroupsPerUserTest, ConcurrentCreatesOfOneUserNeverExceedTheCap) {
  auto [alice, a] = online_user("alice");
  constexpr int kCreators = 8;
  std::vector<std::unique_ptr<WsClient>> connections;
  for (int i = 0; i < kCreators; ++i) {
    connections.push_back(connect());
    login(*connections.back(), alice);
  }
  std::vector<json::object> replies(kCreators);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kCreators; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kCreators) std::this_thread::yield();
      replies[i] = create(*connections[i], "race " + std::to_string(i), {});
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  for (const auto& reply : replies) {
    if (reply.at("type").as_string() == "ok") {
      ++created;
    } else {
      expect_error(reply, "too_large");
    }
  }
  EXPECT_EQ(created, 2);
  EXPECT_EQ(groups_of(*a), 2u);
}

class CreateRateTest : public GroupTest {
 protected:
  std::string group_config() const override { return "      creates_per_user_per_hour: 3\n"; }
};

TEST_F(CreateRateTest, GroupCreatesPastTheHourlyRateAreRateLimitedForThatUserOnly) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  for (int i = 0; i < 3; ++i) create_group(*a, "g" + std::to_string(i), {});
  expect_error(create(*a, "one more", ids({&bob})), "rate_limited");
  EXPECT_TRUE(b->no_event("group"));
  EXPECT_EQ(a->request({{"type", "group.list"}}).at("groups").as_array().size(), 3u);
  // Another connection of Alice is the same user; Bob has his own budget.
  auto again = connect();
  login(*again, alice);
  expect_error(create(*again, "elsewhere", {}), "rate_limited");
  create_group(*b, "bob's", {});
}

// group.list pages (an extension) in group id order; without `limit` one
// page holds every group a user may be in.
TEST_F(GroupMembershipTest, GroupListPagesOnWithNextCursorInGroupIdOrder) {
  auto [alice, a] = online_user("alice");
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) created.push_back(create_group(*a, "g" + std::to_string(i), {}));
  std::vector<std::string> seen;
  std::optional<std::string> cursor;
  int pages = 0;
  do {
    json::object request{{"type", "group.list"}, {"limit", 2}};
    if (cursor) request["cursor"] = *cursor;
    auto reply = a->request(request);
    expect_ok(reply);
    EXPECT_LE(reply.at("groups").as_array().size(), 2u);
    for (const auto& g : reply.at("groups").as_array())
      seen.push_back(std::string(g.at("group_id").as_string()));
    cursor.reset();
    if (const auto* next = reply.if_contains("next_cursor"))
      cursor = std::string(next->as_string());
    ++pages;
  } while (cursor && pages < 10);
  EXPECT_EQ(pages, 3);
  std::vector<std::string> in_order = created;
  std::sort(in_order.begin(), in_order.end(),
            [](const auto& x, const auto& y) { return std::stoll(x) < std::stoll(y); });
  EXPECT_EQ(seen, in_order);
  auto whole = a->request({{"type", "group.list"}});
  EXPECT_EQ(whole.at("groups").as_array().size(), 5u);
  EXPECT_FALSE(whole.contains("next_cursor"));
  expect_error(a->request({{"type", "group.list"}, {"limit", 0}}), "bad_request");
  expect_error(a->request({{"type", "group.list"}, {"cursor", "x"}}), "bad_request");
  expect_error(a->request({{"type", "group.list"}, {"cursor", 5}}), "bad_request");
}

TEST_F(GroupMembershipTest, OwnerLeavingHandsOverToTheEarliestAdminElseMember) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  auto [dave, d] = online_user("dave");
  const auto group = create_group(*a, "g", ids({&bob, &carol, &dave}));
  expect_ok(set_role(*a, group, dave, "admin"));
  expect_ok(set_role(*a, group, carol, "admin"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(b->next_event("group")) << "created, two roles";
  expect_ok(leave(*a, group));
  auto left = b->next_event("group");
  ASSERT_TRUE(left);
  EXPECT_EQ(left->at("change").as_string(), "left");
  auto handed = b->next_event("group");
  ASSERT_TRUE(handed);
  EXPECT_EQ(handed->at("change").as_string(), "role");
  // carol joined before dave (listed first), both admins: carol takes over.
  EXPECT_THAT(strings(handed->at("user_ids")), ElementsAre(carol.id));
  EXPECT_EQ(handed->at("by").as_string(), alice.id);
  auto texts = history(*b, group).at("messages").as_array();
  ASSERT_GE(texts.size(), 2u);
  EXPECT_EQ(texts.at(texts.size() - 2).at("message").as_string(), "alice left");
  EXPECT_EQ(texts.back().at("message").as_string(), "carol is now the owner");
  EXPECT_THAT(roster(info(*b, group)),
              ElementsAre(bob.id + ":member", carol.id + ":owner", dave.id + ":admin"));
  // Without admins, the earliest member.
  expect_ok(set_role(*c, group, dave, "member"));
  expect_ok(leave(*c, group));
  EXPECT_THAT(roster(info(*b, group)), ElementsAre(bob.id + ":owner", dave.id + ":member"));
  expect_error(info(*a, group), "forbidden");
}

TEST_F(GroupMembershipTest, TheLastMemberLeavingEndsTheGroup) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto group = create_group(*a, "short-lived", ids({&bob}));
  expect_ok(gsend(*b, group, "bye", "b1"));
  expect_ok(leave(*a, group));
  expect_ok(leave(*b, group));
  for (auto* client : {a.get(), b.get()}) {
    expect_error(info(*client, group), "not_found");
    expect_error(gsend(*client, group, "anyone?", "late"), "not_found");
    expect_error(add(*client, group, {}), "not_found");
    expect_error(leave(*client, group), "not_found");
    EXPECT_TRUE(client->request({{"type", "group.list"}}).at("groups").as_array().empty());
  }
  // Former members still read what they saw, up to their leaving.
  auto h = history(*b, group);
  expect_ok(h);
  // created, bye, alice left, bob made owner, bob left.
  EXPECT_EQ(h.at("messages").as_array().size(), 5u);
  EXPECT_EQ(history(*a, group).at("messages").as_array().size(), 3u);
}

TEST_F(GroupMembershipTest, ConcurrentChangesAreAnnouncedInSeqOrder) {
  auto [owner, o] = online_user("owner");
  auto [first_admin, a1] = online_user("first");
  auto [second_admin, a2] = online_user("second");
  auto [watcher, w] = online_user("watcher");
  const auto group = create_group(*o, "busy", ids({&first_admin, &second_admin, &watcher}));
  expect_ok(set_role(*o, group, first_admin, "admin"));
  expect_ok(set_role(*o, group, second_admin, "admin"));
  constexpr int kEach = 15;
  std::vector<User> newcomers;
  for (int i = 0; i < 2 * kEach; ++i)
    newcomers.push_back(register_user(*w, "n" + std::to_string(i)));
  // Both admins pipeline their adds at once.
  for (int i = 0; i < kEach; ++i) {
    a1->send({{"type", "group.add"},
              {"id", "a" + std::to_string(i)},
              {"group_id", group},
              {"members", ids({&newcomers[i]})}});
    a2->send({{"type", "group.add"},
              {"id", "b" + std::to_string(i)},
              {"group_id", group},
              {"members", ids({&newcomers[kEach + i]})}});
  }
  std::vector<std::int64_t> seqs;
  while (seqs.size() < 2 * kEach) {
    auto event = w->next_event("message");
    ASSERT_TRUE(event) << "after " << seqs.size();
    if (event->at("message").as_string().find("added") == std::string::npos) continue;
    seqs.push_back(event->at("seq").as_int64());
  }
  for (std::size_t i = 1; i < seqs.size(); ++i) EXPECT_GT(seqs[i], seqs[i - 1]) << "event " << i;
}

TEST_F(GroupMembershipTest, SharedServiceNamesThoseInACurrentGroupWithTheUser) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  auto [dave, d] = online_user("dave");
  const auto group = create_group(*a, "g", ids({&bob, &carol}));
  auto question = [&] {
    return ask(*a, "group.shared",
               {{"user_id", alice.id}, {"others", ids({&alice, &bob, &carol, &dave})}});
  };
  auto reply = question();
  expect_ok(reply);
  std::vector<std::string> shared = strings(reply.at("value").at("shared"));
  std::sort(shared.begin(), shared.end());
  std::vector<std::string> expected{bob.id, carol.id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(shared, expected);
  expect_ok(remove(*a, group, ids({&carol})));
  EXPECT_THAT(strings(question().at("value").at("shared")), ElementsAre(bob.id));
  expect_error(ask(*a, "group.shared", {{"user_id", alice.id}}), "bad_request");
}

TEST_F(GroupMembershipTest, ContactsServiceNamesUnknownIdsAndOneToOnePeers) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  expect_ok(send(*a, bob, "hi", "d1"));
  // carol shares only a group with alice: not a 1:1 contact.
  create_group(*a, "g", ids({&carol}));
  json::array others = ids({&bob, &carol});
  others.push_back("777777");
  others.push_back("not-an-id");
  auto reply = ask(*a, "session.contacts", {{"user_id", alice.id}, {"others", others}});
  expect_ok(reply);
  EXPECT_THAT(strings(reply.at("value").at("shared")), ElementsAre(bob.id));
  auto unknown = strings(reply.at("value").at("unknown"));
  std::sort(unknown.begin(), unknown.end());
  EXPECT_THAT(unknown, ElementsAre("777777", "not-an-id"));
  EXPECT_FALSE(reply.at("value").as_object().contains("wrote"));
  // `wrote`, when asked: who sent a message in the 1:1 conversation with
  // user_id. Alice wrote to Bob; Bob has not written to her.
  reply = ask(*a, "session.contacts",
              {{"user_id", alice.id}, {"others", ids({&bob, &carol})}, {"wrote", true}});
  expect_ok(reply);
  EXPECT_TRUE(reply.at("value").at("wrote").as_array().empty());
  reply = ask(*a, "session.contacts",
              {{"user_id", bob.id}, {"others", ids({&alice, &carol})}, {"wrote", true}});
  EXPECT_THAT(strings(reply.at("value").at("wrote")), ElementsAre(alice.id));
  expect_error(ask(*a, "session.contacts", {{"others", others}}), "bad_request");
}

TEST_F(GroupMembershipTest, OnlyContactsAddAUserWhoAsksForIt) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [mallory, m] = online_user("mallory");
  // The default is protocol-v1's: anyone adds anyone.
  auto setting = a->request({{"type", "group.privacy"}});
  expect_ok(setting);
  EXPECT_EQ(setting.at("adds").as_string(), "anyone");
  expect_ok(b->request({{"type", "group.privacy"}, {"adds", "contacts"}}));
  expect_error(b->request({{"type", "group.privacy"}, {"adds", "friends"}}), "bad_request");
  setting = b->request({{"type", "group.privacy"}});
  EXPECT_EQ(setting.at("adds").as_string(), "contacts");

  // Bob has never written to Mallory (her own "hi" does not count): neither
  // a create nor an add naming him goes through, and nothing changes.
  expect_ok(send(*m, bob, "hi, join my group?", "m1"));
  auto refused = create(*m, "spam", ids({&alice, &bob}));
  expect_error(refused, "forbidden");
  EXPECT_EQ(refused.at("reason").as_string(), "adds_restricted");
  EXPECT_NE(std::string(refused.at("message").as_string()).find(bob.id), std::string::npos);
  const auto malloryGroup = create_group(*m, "spam", ids({&alice}));
  refused = add(*m, malloryGroup, ids({&bob}));
  expect_error(refused, "forbidden");
  EXPECT_EQ(refused.at("reason").as_string(), "adds_restricted");
  auto listed = b->request({{"type", "group.list"}});
  expect_ok(listed);
  EXPECT_TRUE(listed.at("groups").as_array().empty()) << json::serialize(listed);

  // Bob has written to Alice: her add goes through, and Bob may still
  // create groups himself.
  expect_ok(send(*b, alice, "hi", "d1"));
  const auto group = create_group(*a, "friends", ids({}));
  expect_ok(add(*a, group, ids({&bob})));
  create_group(*b, "his own", ids({&alice}));
  // Back to anyone: Mallory's add goes through too.
  expect_ok(b->request({{"type", "group.privacy"}, {"adds", "anyone"}}));
  expect_ok(add(*m, malloryGroup, ids({&bob})));
}

}  // namespace
}  // namespace parley::test
