// Group messages over real WebSockets and PostgreSQL: delivery to every
// member's connections, ordering against membership changes, receipts and
// statuses, unread counts, the login catch-up and push offers.
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "group_fixture.hpp"

namespace parley::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using GroupChatTest = GroupTest;

std::vector<json::object> messages_of(const json::object& history_reply) {
  std::vector<json::object> out;
  for (const auto& m : history_reply.at("messages").as_array()) out.push_back(m.as_object());
  return out;
}

TEST_F(GroupChatTest, EveryMembersEveryConnectionGetsAMessageOnce) {
  auto [alice, a] = online_user("alice");
  auto alice_laptop = connect();
  login(*alice_laptop, alice);
  auto [bob, b] = online_user("bob");
  auto bob_laptop = connect();
  login(*bob_laptop, bob);
  auto [carol, c] = online_user("carol");
  auto [dave, d] = online_user("dave");
  const auto group = create_group(*a, "g", ids({&bob, &carol}));

  auto ok = gsend(*a, group, "hello group", "m1");
  expect_ok(ok);
  EXPECT_EQ(ok.at("conversation").as_string(), "g:" + group);
  EXPECT_EQ(ok.at("seq").as_int64(), 2);  // after the "created" system message
  for (auto* client : {bob_laptop.get(), b.get(), c.get(), alice_laptop.get()}) {
    std::optional<json::object> event;
    do {
      event = client->next_event("message");
      ASSERT_TRUE(event);
    } while (event->at("eventType").as_string() == "system");
    EXPECT_EQ(event->at("message_id"), ok.at("message_id"));
    EXPECT_EQ(event->at("group_id").as_string(), group);
    EXPECT_EQ(event->at("sender_id").as_string(), alice.id);
    EXPECT_EQ(event->at("message").as_string(), "hello group");
    EXPECT_EQ(event->at("eventType").as_string(), "user");
    EXPECT_EQ(event->at("timestamp"), ok.at("timestamp"));
    EXPECT_FALSE(event->contains("recipient_id"));
    EXPECT_TRUE(client->no_event("message")) << "exactly once";
  }
  EXPECT_TRUE(d->no_event("message"));
  // The sending connection has the ok; its "created" system message aside,
  // it gets no copy.
  auto own = a->next_event("message");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->at("eventType").as_string(), "system");
  EXPECT_TRUE(a->no_event("message"));

  // Idempotent: the same client_msg_id is the same message, delivered once.
  auto again = gsend(*a, group, "different text", "m1");
  EXPECT_EQ(again.at("message_id"), ok.at("message_id"));
  EXPECT_EQ(again.at("seq"), ok.at("seq"));
  EXPECT_TRUE(b->no_event("message"));

  // Typing reaches the other members.
  expect_ok(b->request({{"type", "typing"}, {"conversation", "g:" + group}}));
  auto typing = c->next_event("typing");
  ASSERT_TRUE(typing);
  EXPECT_EQ(typing->at("user_id").as_string(), bob.id);
  EXPECT_EQ(typing->at("conversation").as_string(), "g:" + group);
  EXPECT_TRUE(d->no_event("typing"));
}

TEST_F(GroupChatTest, SendsNeedExactlyOneTargetAndValidText) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto group = create_group(*a, "g", ids({&bob}));
  expect_error(a->request({{"type", "send"},
                           {"group_id", group},
                           {"to", bob.id},
                           {"message", "both"},
                           {"client_msg_id", "x"}}),
               "bad_request");
  expect_error(gsend(*a, group, "", "empty"), "bad_request");
  expect_error(gsend(*a, group, std::string(4001, 'x'), "long"), "too_large");
  expect_error(a->request({{"type", "send"}, {"group_id", group}, {"message", "no id"}}),
               "bad_request");
}

TEST_F(GroupChatTest, PipelinedSendsFromOneConnectionGetIncreasingSeq) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto group = create_group(*a, "g", ids({&bob}));
  constexpr int kSends = 300;
  for (int i = 0; i < kSends; ++i) {
    a->send({{"type", "send"},
             {"id", "s" + std::to_string(i)},
             {"group_id", group},
             {"message", "n" + std::to_string(i)},
             {"client_msg_id", "p" + std::to_string(i)}});
  }
  std::map<int, std::int64_t> seq_of;
  while (seq_of.size() < static_cast<std::size_t>(kSends)) {
    auto frame = a->receive(10s);
    ASSERT_TRUE(frame) << "replies missing after " << seq_of.size();
    if (!frame->contains("re")) continue;
    ASSERT_EQ(frame->at("type").as_string(), "ok") << json::serialize(*frame);
    seq_of[std::stoi(std::string(frame->at("re").as_string()).substr(1))] =
        frame->at("seq").as_int64();
  }
  for (int i = 0; i < kSends; ++i) EXPECT_EQ(seq_of[i], i + 2) << "send " << i;
  // Bob receives them in seq order.
  std::int64_t last = 0;
  for (int received = 0; received < kSends + 1;) {
    auto event = b->next_event("message");
    ASSERT_TRUE(event) << "after " << received;
    EXPECT_EQ(event->at("seq").as_int64(), last + 1);
    last = event->at("seq").as_int64();
    ++received;
  }
}

TEST_F(GroupChatTest, ARemovedMemberStopsReceivingAtOnceAndCannotSend) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  const auto group = create_group(*a, "g", ids({&bob, &carol}));
  expect_ok(gsend(*b, group, "before", "b1"));
  ASSERT_TRUE(c->next_event("group")) << "created";
  expect_ok(remove(*a, group, ids({&carol})));
  auto removed = c->next_event("group");
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->at("change").as_string(), "removed");
  expect_ok(gsend(*b, group, "after", "b2"));
  expect_error(gsend(*c, group, "still here?", "c1"), "forbidden");
  expect_error(c->request({{"type", "typing"}, {"conversation", "g:" + group}}), "forbidden");
  expect_error(info(*c, group), "forbidden");

  std::vector<std::string> seen;
  while (auto event = c->next_event("message", 500ms)) {
    seen.push_back(std::string(event->at("message").as_string()));
  }
  EXPECT_TRUE(std::find(seen.begin(), seen.end(), "before") != seen.end());
  EXPECT_TRUE(std::find(seen.begin(), seen.end(), "after") == seen.end());

  // History: up to and including the removal for carol, everything for alice.
  auto hc = messages_of(history(*c, group));
  ASSERT_EQ(hc.size(), 3u);  // created, before, removed
  EXPECT_EQ(hc.back().at("eventType").as_string(), "system");
  auto ha = messages_of(history(*a, group));
  ASSERT_EQ(ha.size(), 4u);
  EXPECT_EQ(ha.back().at("message").as_string(), "after");

  // Carol's conversations show the group as she left it.
  auto list = c->request({{"type", "conversations"}});
  expect_ok(list);
  ASSERT_EQ(list.at("conversations").as_array().size(), 1u);
  EXPECT_EQ(list.at("conversations").at(0).at("last_message").at("seq").as_int64(), 3);
}

// A former member's list orders the group by what they may see of it: it
// stays where their removal put it, and follows the group again once they
// are added back.
TEST_F(GroupChatTest, AFormerMembersListKeepsTheGroupWhereTheirRemovalLeftIt) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto group = create_group(*a, "lunch", ids({&bob}));
  const auto direct = conversation_of(alice, bob);
  // Activity is kept to the millisecond: each step waits for the next one,
  // so the order asserted is never a tie.
  pqxx::connection db(database_url_);
  const auto next_millisecond = [&] {
    while (pqxx::nontransaction(db)
               .exec1("SELECT clock_timestamp() <= max(last_activity) + interval '1 ms'"
                      " FROM conversations")[0]
               .as<bool>()) {
    }
  };
  const auto order_for = [](WsClient& c) {
    std::vector<std::string> out;
    const auto reply = c.request({{"type", "conversations"}});
    for (const auto& entry : reply.at("conversations").as_array())
      out.push_back(std::string(entry.at("conversation").as_string()));
    return out;
  };
  next_millisecond();
  expect_ok(remove(*a, group, ids({&bob})));
  next_millisecond();
  expect_ok(send(*a, bob, "hi", "d1"));
  EXPECT_THAT(order_for(*b), ElementsAre(direct, "g:" + group));
  next_millisecond();
  expect_ok(gsend(*a, group, "after", "g1"));
  EXPECT_THAT(order_for(*a), ElementsAre("g:" + group, direct));
  EXPECT_THAT(order_for(*b), ElementsAre(direct, "g:" + group));
  next_millisecond();
  expect_ok(add(*a, group, ids({&bob})));
  EXPECT_THAT(order_for(*b), ElementsAre("g:" + group, direct));
}

TEST_F(GroupChatTest, RemovalRacingSendsSplitsThemAtTheRemovalSeq) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  const auto group = create_group(*a, "g", ids({&bob, &carol}));
  constexpr int kSends = 200;
  std::thread sender([&, bob_client = b.get()] {
    for (int i = 0; i < kSends; ++i) {
      bob_client->send({{"type", "send"},
                        {"id", "s" + std::to_string(i)},
                        {"group_id", group},
                        {"message", "n" + std::to_string(i)},
                        {"client_msg_id", "r" + std::to_string(i)}});
    }
  });
  // Remove carol once bob's first send is stored, while the rest are written.
  int replies = 0;
  while (replies == 0) {
    auto frame = b->receive(10s);
    ASSERT_TRUE(frame);
    if (frame->contains("re")) ++replies;
  }
  auto removal = remove(*a, group, ids({&carol}));
  sender.join();
  expect_ok(removal);
  while (replies < kSends) {
    auto frame = b->receive(10s);
    ASSERT_TRUE(frame);
    if (frame->contains("re")) ++replies;
  }
  // Alice's view of the whole history (two pages): gapless, one removal.
  auto all = messages_of(history(*a, group, 200));
  ASSERT_FALSE(all.empty());
  auto older = messages_of(a->request({{"type", "history"},
                                       {"conversation", "g:" + group},
                                       {"before_seq", all.front().at("seq")}}));
  all.insert(all.begin(), older.begin(), older.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kSends + 2));
  std::int64_t removal_seq = 0;
  std::int64_t expected_seq = 1;
  for (const auto& m : all) {
    EXPECT_EQ(m.at("seq").as_int64(), expected_seq++) << "gapless";
    if (m.at("eventType").as_string() == "system") removal_seq = m.at("seq").as_int64();
  }
  ASSERT_GT(removal_seq, 1);
  std::int64_t highest = 0;
  while (auto event = c->next_event("message", 500ms)) {
    highest = std::max(highest, event->at("seq").as_int64());
  }
  EXPECT_LE(highest, removal_seq) << "carol got a message written after her removal";
  auto carol_history = messages_of(history(*c, group));
  ASSERT_FALSE(carol_history.empty());
  EXPECT_EQ(carol_history.back().at("seq").as_int64(), removal_seq);
}

TEST_F(GroupChatTest, SenderSeesDeliveredReadAndReadByPerMessage) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  const auto group = create_group(*a, "g", ids({&bob, &carol}));
  const auto conversation = "g:" + group;
  auto ok = gsend(*a, group, "status?", "s1");
  const auto seq = ok.at("seq").as_int64();
  const auto status_for_alice = [&] {
    auto h = messages_of(history(*a, group));
    return h.back();
  };
  EXPECT_EQ(status_for_alice().at("status").as_string(), "sent");
  EXPECT_EQ(status_for_alice().at("read_by").as_int64(), 0);

  expect_ok(b->request(
      {{"type", "mark"}, {"conversation", conversation}, {"status", "read"}, {"seq", seq}}));
  auto receipt = a->next_event("receipt");
  ASSERT_TRUE(receipt);
  EXPECT_EQ(receipt->at("user_id").as_string(), bob.id);
  EXPECT_EQ(receipt->at("status").as_string(), "read");
  EXPECT_EQ(receipt->at("seq").as_int64(), seq);
  EXPECT_EQ(status_for_alice().at("status").as_string(), "sent");
  EXPECT_EQ(status_for_alice().at("read_by").as_int64(), 1);

  expect_ok(c->request(
      {{"type", "mark"}, {"conversation", conversation}, {"status", "delivered"}, {"seq", seq}}));
  EXPECT_EQ(status_for_alice().at("status").as_string(), "delivered");
  EXPECT_EQ(status_for_alice().at("read_by").as_int64(), 1);
  // Readers see their own state.
  EXPECT_EQ(messages_of(history(*b, group)).back().at("status").as_string(), "read");
  EXPECT_EQ(messages_of(history(*c, group)).back().at("status").as_string(), "delivered");

  expect_ok(c->request(
      {{"type", "mark"}, {"conversation", conversation}, {"status", "read"}, {"seq", 99}}));
  EXPECT_EQ(status_for_alice().at("status").as_string(), "read");
  EXPECT_EQ(status_for_alice().at("read_by").as_int64(), 2);
  // conversations shows the last message with the same status.
  auto last = a->request({{"type", "conversations"}}).at("conversations").at(0).at("last_message");
  EXPECT_EQ(last.at("status").as_string(), "read");
  EXPECT_EQ(last.at("read_by").as_int64(), 2);
  // A member who joins later does not count for older messages.
  auto [dave, d] = online_user("dave");
  expect_ok(add(*a, group, ids({&dave})));
  auto h = messages_of(history(*a, group));
  ASSERT_GE(h.size(), 2u);
  EXPECT_EQ(h[h.size() - 2].at("status").as_string(), "read");
  EXPECT_EQ(h[h.size() - 2].at("read_by").as_int64(), 2);
}

TEST_F(GroupChatTest, ConversationsListGroupsWithUnreadCounts) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  const auto group = create_group(*a, "g", ids({&bob, &carol}));
  for (int i = 0; i < 3; ++i)
    expect_ok(gsend(*a, group, "m" + std::to_string(i), "u" + std::to_string(i)));
  auto list = b->request({{"type", "conversations"}});
  expect_ok(list);
  ASSERT_EQ(list.at("conversations").as_array().size(), 1u);
  auto entry = list.at("conversations").at(0).as_object();
  EXPECT_EQ(entry.at("conversation").as_string(), "g:" + group);
  EXPECT_EQ(entry.at("unread").as_int64(), 4) << "the created message and three";
  EXPECT_EQ(entry.at("read_seq").as_int64(), 0);
  EXPECT_EQ(entry.at("last_message").at("message").as_string(), "m2");
  EXPECT_EQ(entry.at("last_message").at("group_id").as_string(), group);

  expect_ok(b->request(
      {{"type", "mark"}, {"conversation", "g:" + group}, {"status", "read"}, {"seq", 2}}));
  entry = b->request({{"type", "conversations"}}).at("conversations").at(0).as_object();
  EXPECT_EQ(entry.at("unread").as_int64(), 2);
  EXPECT_EQ(entry.at("read_seq").as_int64(), 2);
  // peer_read_seq is the lowest read watermark of the other members.
  entry = a->request({{"type", "conversations"}}).at("conversations").at(0).as_object();
  EXPECT_EQ(entry.at("peer_read_seq").as_int64(), 0) << "carol read nothing";
  EXPECT_EQ(entry.at("unread").as_int64(), 0) << "alice's own messages";
  expect_ok(c->request(
      {{"type", "mark"}, {"conversation", "g:" + group}, {"status", "read"}, {"seq", 3}}));
  entry = a->request({{"type", "conversations"}}).at("conversations").at(0).as_object();
  EXPECT_EQ(entry.at("peer_read_seq").as_int64(), 2);
}

TEST_F(GroupChatTest, LoginCatchUpIncludesPendingGroupMessages) {
  auto [alice, a] = online_user("alice");
  auto b = connect();
  User bob = register_user(*b, "bob");
  const auto group = create_group(*a, "g", ids({&bob}));
  expect_ok(gsend(*a, group, "one", "c1"));
  expect_ok(gsend(*a, group, "two", "c2"));
  auto events = login(*b, bob);
  std::vector<std::string> texts;
  std::vector<std::int64_t> seqs;
  for (const auto& e : events) {
    if (e.at("type").as_string() != "message") continue;
    EXPECT_EQ(e.at("group_id").as_string(), group);
    texts.push_back(std::string(e.at("message").as_string()));
    seqs.push_back(e.at("seq").as_int64());
  }
  ASSERT_EQ(texts.size(), 3u);
  EXPECT_EQ(texts[1], "one");
  EXPECT_EQ(texts[2], "two");
  EXPECT_THAT(seqs, ElementsAre(1, 2, 3));

  // Messages written before someone joined are not pending for them.
  auto c = connect();
  User carol = register_user(*c, "carol");
  expect_ok(add(*a, group, ids({&carol})));
  auto carol_events = login(*c, carol);
  ASSERT_EQ(carol_events.size(), 1u);
  EXPECT_EQ(carol_events[0].at("eventType").as_string(), "system");
  EXPECT_EQ(carol_events[0].at("seq").as_int64(), 4);

  // Removed while offline: pending up to the removal, nothing after it.
  c.reset();
  expect_ok(gsend(*a, group, "three", "c3"));
  expect_ok(remove(*a, group, ids({&carol})));
  expect_ok(gsend(*a, group, "four", "c4"));
  auto again = connect();
  std::vector<std::int64_t> carol_seqs;
  for (const auto& e : login_with_token(*again, carol)) {
    if (e.at("type").as_string() == "message") carol_seqs.push_back(e.at("seq").as_int64());
  }
  EXPECT_THAT(carol_seqs, ElementsAre(4, 5, 6)) << "added, three, removed";
}

// What a removed member was sent stays theirs to mark, up to the removal:
// otherwise it would come back in every login catch-up and stay unread.
TEST_F(GroupChatTest, AFormerMemberMarksUpToTheRemovalAndNothingStaysPending) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto c = connect();
  User carol = register_user(*c, "carol");
  login(*c, carol);
  const auto group = create_group(*a, "g", ids({&bob, &carol}));
  const auto conversation = "g:" + group;
  c.reset();  // carol is offline from here on
  await_offline(carol);
  expect_ok(gsend(*a, group, "for carol", "f1"));
  expect_ok(remove(*a, group, ids({&carol})));
  const auto removal = messages_of(history(*a, group)).back().at("seq").as_int64();
  expect_ok(gsend(*a, group, "after carol", "f2"));
  for (auto* member : {a.get(), b.get()}) {
    expect_ok(member->request(
        {{"type", "mark"}, {"conversation", conversation}, {"status", "read"}, {"seq", 99}}));
  }

  auto again = connect();
  std::vector<std::int64_t> pending;
  for (const auto& e : login_with_token(*again, carol)) {
    if (e.at("type").as_string() == "message") pending.push_back(e.at("seq").as_int64());
  }
  ASSERT_FALSE(pending.empty());
  EXPECT_EQ(pending.back(), removal);
  // Her conversations entry shows the others' progress only up to her removal.
  auto entry = again->request({{"type", "conversations"}}).at("conversations").at(0);
  EXPECT_EQ(entry.at("conversation").as_string(), conversation);
  EXPECT_EQ(entry.at("peer_read_seq").as_int64(), removal);
  EXPECT_GT(entry.at("unread").as_int64(), 0);

  // A mark beyond the removal counts as the removal.
  expect_ok(again->request(
      {{"type", "mark"}, {"conversation", conversation}, {"status", "read"}, {"seq", 99}}));
  entry = again->request({{"type", "conversations"}}).at("conversations").at(0);
  EXPECT_EQ(entry.at("unread").as_int64(), 0);
  EXPECT_EQ(entry.at("read_seq").as_int64(), removal);
  auto later = connect();
  EXPECT_TRUE(login_with_token(*later, carol).empty()) << "nothing pending any more";
}

// A client that lost its ok resends; being removed meanwhile must not turn
// a stored message into a refusal.
TEST_F(GroupChatTest, ARepeatedSendGetsItsFirstOkAfterTheSenderLeft) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto group = create_group(*a, "g", ids({&bob}));
  auto first = gsend(*b, group, "last words", "lw1");
  expect_ok(first);
  expect_ok(remove(*a, group, ids({&bob})));
  auto repeat = gsend(*b, group, "last words", "lw1");
  expect_ok(repeat);
  EXPECT_EQ(repeat.at("message_id"), first.at("message_id"));
  EXPECT_EQ(repeat.at("seq"), first.at("seq"));
  expect_error(gsend(*b, group, "new words", "lw2"), "forbidden");

  // And after the group ended.
  auto second = gsend(*a, group, "closing", "cl1");
  expect_ok(second);
  expect_ok(leave(*a, group));
  auto after_end = gsend(*a, group, "closing", "cl1");
  expect_ok(after_end);
  EXPECT_EQ(after_end.at("message_id"), second.at("message_id"));
  expect_error(gsend(*a, group, "anyone?", "cl2"), "not_found");
}

// The login catch-up replays only the receipts a user would have had live:
// about their own messages, in a group they are still in, and a read mark
// as one read receipt.
TEST_F(GroupChatTest, CatchUpReceiptsReachOnlyCurrentSendersOfPassedMessages) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  auto [dave, d] = online_user("dave");
  const auto group = create_group(*a, "g", ids({&bob, &carol, &dave}));
  const auto conversation = "g:" + group;
  const auto seq = gsend(*b, group, "from bob", "rb1").at("seq").as_int64();
  // Bob, Carol and Dave go offline; Dave is removed meanwhile.
  b.reset();
  c.reset();
  d.reset();
  for (const auto* user : {&bob, &carol, &dave}) await_offline(*user);
  expect_ok(remove(*a, group, ids({&dave})));
  // Only alice marks: her read passes bob's message (and none of carol's).
  expect_ok(a->request(
      {{"type", "mark"}, {"conversation", conversation}, {"status", "read"}, {"seq", 99}}));

  const auto receipts_at_login = [&](User& user) {
    auto client = connect();
    std::vector<json::object> receipts;
    for (auto& e : login_with_token(*client, user)) {
      if (e.at("type").as_string() == "receipt") receipts.push_back(std::move(e));
    }
    return receipts;
  };
  const auto for_bob = receipts_at_login(bob);
  ASSERT_EQ(for_bob.size(), 1u) << "one read receipt, not also a delivered one";
  EXPECT_EQ(for_bob[0].at("user_id").as_string(), alice.id);
  EXPECT_EQ(for_bob[0].at("status").as_string(), "read");
  EXPECT_GE(for_bob[0].at("seq").as_int64(), seq);
  EXPECT_TRUE(receipts_at_login(carol).empty()) << "carol sent nothing alice's mark passed";
  EXPECT_TRUE(receipts_at_login(dave).empty()) << "dave is no longer a member";
}

TEST_F(GroupChatTest, OfflineMembersAreOfferedAPushTitledWithTheGroupName) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto c = connect();
  User carol = register_user(*c, "carol");
  {
    // Offers go to users with devices; the journal plugin serves no push
    // platform, so the device goes straight into session's table.
    pqxx::connection conn(database_url_);
    pqxx::work tx(conn);
    for (const User* u : {&bob, &carol}) {
      tx.exec_params("INSERT INTO devices (token, user_id, platform) VALUES ($1, $2, 'fcm')",
                     "token-" + u->id, std::stoll(u->id));
    }
    tx.commit();
  }
  const auto group = create_group(*a, "book club", ids({&bob, &carol}));
  auto ok = gsend(*a, group, "chapter 3 tonight", "p1");
  expect_ok(ok);
  const auto journal_text = wait_for_journal("chapter 3 tonight");
  EXPECT_THAT(journal_text, HasSubstr("\"event\":\"push.offer.fcm\""));
  EXPECT_THAT(journal_text, HasSubstr("\"user_id\":\"" + carol.id + "\""));
  EXPECT_THAT(journal_text, HasSubstr("\"title\":\"book club\""));
  EXPECT_THAT(journal_text, HasSubstr("\"body\":\"alice: chapter 3 tonight\""));
  EXPECT_THAT(journal_text, HasSubstr("\"group_id\":\"" + group + "\""));
  // Bob is online, alice wrote it: only carol is offered a push.
  EXPECT_THAT(journal_text, ::testing::Not(HasSubstr("\"user_id\":\"" + bob.id + "\"")));
}

class FullGroupTest : public GroupTest {
 protected:
  static constexpr int kMembers = 40;
  std::string group_config() const override {
    return "      max_members: " + std::to_string(kMembers) + "\n";
  }
};

TEST_F(FullGroupTest, AFullGroupChatsWithEveryMemberGettingEveryMessageOnceInOrder) {
  std::vector<User> users;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kMembers; ++i) {
    auto [user, client] = online_user("m" + std::to_string(i));
    users.push_back(user);
    clients.push_back(std::move(client));
  }
  json::array others;
  for (int i = 1; i < kMembers; ++i) others.push_back(json::string(users[i].id));
  const auto group = create_group(*clients[0], "full", others);
  auto [late, l] = online_user("late");
  expect_error(add(*clients[0], group, ids({&late})), "group_full");

  // Three members send at once, each pipelining its messages.
  constexpr int kSenders = 3;
  constexpr int kEach = 10;
  for (int s = 0; s < kSenders; ++s) {
    for (int i = 0; i < kEach; ++i) {
      clients[s]->send({{"type", "send"},
                        {"id", "q" + std::to_string(i)},
                        {"group_id", group},
                        {"message", std::to_string(s) + ":" + std::to_string(i)},
                        {"client_msg_id", "f" + std::to_string(i)}});
    }
  }
  for (int m = 0; m < kMembers; ++m) {
    // Everything from the others, once, in seq order (after "created").
    const int expected = m < kSenders ? (kSenders - 1) * kEach : kSenders * kEach;
    std::set<std::string> seen;
    std::int64_t last_seq = 0;
    while (static_cast<int>(seen.size()) < expected) {
      auto event = clients[m]->next_event("message");
      ASSERT_TRUE(event) << "member " << m << " has " << seen.size();
      const auto seq = event->at("seq").as_int64();
      EXPECT_GT(seq, last_seq) << "member " << m;
      last_seq = seq;
      if (event->at("eventType").as_string() == "system") continue;
      EXPECT_TRUE(seen.insert(std::string(event->at("message").as_string())).second)
          << "member " << m << " got a message twice";
      EXPECT_NE(event->at("sender_id").as_string(), users[m].id);
    }
    EXPECT_TRUE(clients[m]->no_event("message", 100ms)) << "member " << m;
  }
  EXPECT_TRUE(l->no_event("message", 100ms));
}

}  // namespace
}  // namespace parley::test
