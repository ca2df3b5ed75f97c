// One-to-one chat over real WebSockets and PostgreSQL: live and offline
// delivery, several devices, receipts, idempotency, seq, history, guards.
#include <map>
#include <numeric>
#include <set>
#include <thread>

#include <fmt/chrono.h>
#include <gmock/gmock.h>

#include "session_fixture.hpp"

namespace parley::test {
namespace {

using ChatTest = SessionTest;

std::string text_of(const json::object& event) {
  return std::string(event.at("message").as_string());
}

TEST_F(ChatTest, AliceToBobLive) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto ok = send(*a, bob, "hello bob", "c1");
  expect_ok(ok);
  EXPECT_EQ(ok.at("conversation").as_string(), conversation_of(alice, bob));
  EXPECT_EQ(ok.at("seq").as_int64(), 1);
  auto event = b->next_event("message");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->at("message_id"), ok.at("message_id"));
  EXPECT_EQ(event->at("conversation"), ok.at("conversation"));
  EXPECT_EQ(event->at("seq").as_int64(), 1);
  EXPECT_EQ(event->at("sender_id").as_string(), alice.id);
  EXPECT_EQ(event->at("recipient_id").as_string(), bob.id);
  EXPECT_EQ(text_of(*event), "hello bob");
  EXPECT_EQ(event->at("status").as_string(), "sent");
  EXPECT_EQ(event->at("eventType").as_string(), "user");
  EXPECT_EQ(event->at("timestamp"), ok.at("timestamp"));
  // The sending connection has the ok, not a copy.
  EXPECT_TRUE(a->no_event("message"));
}

TEST_F(ChatTest, TimestampsAreUtcWhateverTheServersTimeZone) {
  setenv("TZ", "JST-9", 1);  // a POSIX zone nine hours east, no tzdata needed
  server_->stop();
  server_->start();
  unsetenv("TZ");
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto minute = [](std::chrono::system_clock::time_point t) {
    return fmt::format("{:%Y-%m-%dT%H:%M}", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
  };
  const auto before = minute(std::chrono::system_clock::now());
  auto ok = send(*a, bob, "what time is it?", "t1");
  const auto after = minute(std::chrono::system_clock::now());
  const std::string stamp(ok.at("timestamp").as_string());
  EXPECT_TRUE(stamp.rfind(before, 0) == 0 || stamp.rfind(after, 0) == 0)
      << stamp << " vs " << before;
  EXPECT_EQ(stamp.size(), 24u);
  EXPECT_EQ(stamp.back(), 'Z');
  auto history = a->request({{"type", "history"}, {"conversation", conversation_of(alice, bob)}});
  EXPECT_EQ(history.at("messages").at(0).at("timestamp").as_string(), stamp);
}

TEST_F(ChatTest, OfflineMessagesArriveInOrderAtLoginThenSynced) {
  auto [alice, a] = online_user("alice");
  auto b = connect();
  User bob = register_user(*b, "bob");
  for (int i = 1; i <= 5; ++i)
    expect_ok(send(*a, bob, "m" + std::to_string(i), "c" + std::to_string(i)));
  auto events = login(*b, bob);
  ASSERT_EQ(events.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(events[i].at("type").as_string(), "message");
    EXPECT_EQ(text_of(events[i]), "m" + std::to_string(i + 1));
    EXPECT_EQ(events[i].at("seq").as_int64(), i + 1);
  }
}

TEST_F(ChatTest, UndeliveredMessagesComeAgainUntilMarkedDelivered) {
  auto [alice, a] = online_user("alice");
  auto b = connect();
  User bob = register_user(*b, "bob");
  expect_ok(send(*a, bob, "one", "c1"));
  expect_ok(send(*a, bob, "two", "c2"));
  EXPECT_EQ(login(*b, bob).size(), 2u);
  b.reset();
  auto again = connect();
  auto events = login_with_token(*again, bob);
  ASSERT_EQ(events.size(), 2u) << "not marked delivered: pending again";
  expect_ok(again->request({{"type", "mark"},
                            {"conversation", conversation_of(alice, bob)},
                            {"status", "delivered"},
                            {"seq", 1}}));
  again.reset();
  auto third = connect();
  events = login_with_token(*third, bob);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(text_of(events[0]), "two");
}

TEST_F(ChatTest, RecipientOnTwoConnectionsGetsItOnBoth) {
  auto [alice, a] = online_user("alice");
  auto [bob, phone] = online_user("bob");
  auto laptop = connect();
  login(*laptop, bob);
  expect_ok(send(*a, bob, "to both", "c1"));
  auto on_phone = phone->next_event("message");
  auto on_laptop = laptop->next_event("message");
  ASSERT_TRUE(on_phone);
  ASSERT_TRUE(on_laptop);
  EXPECT_EQ(text_of(*on_phone), "to both");
  EXPECT_EQ(on_phone->at("message_id"), on_laptop->at("message_id"));
}

TEST_F(ChatTest, SendersOtherConnectionGetsACopy) {
  auto [alice, phone] = online_user("alice");
  auto laptop = connect();
  login(*laptop, alice);
  auto [bob, b] = online_user("bob");
  auto ok = send(*phone, bob, "from my phone", "c1");
  expect_ok(ok);
  auto copy = laptop->next_event("message");
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->at("message_id"), ok.at("message_id"));
  EXPECT_EQ(copy->at("sender_id").as_string(), alice.id);
  EXPECT_TRUE(phone->no_event("message"));
}

TEST_F(ChatTest, ReceiptsReachTheSenderLive) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto conv = conversation_of(alice, bob);
  expect_ok(send(*a, bob, "one", "c1"));
  expect_ok(send(*a, bob, "two", "c2"));
  ASSERT_TRUE(b->next_event("message"));
  expect_ok(
      b->request({{"type", "mark"}, {"conversation", conv}, {"status", "delivered"}, {"seq", 2}}));
  auto delivered = a->next_event("receipt");
  ASSERT_TRUE(delivered);
  EXPECT_EQ(delivered->at("conversation").as_string(), conv);
  EXPECT_EQ(delivered->at("user_id").as_string(), bob.id);
  EXPECT_EQ(delivered->at("status").as_string(), "delivered");
  EXPECT_EQ(delivered->at("seq").as_int64(), 2);
  expect_ok(b->request({{"type", "mark"}, {"conversation", conv}, {"status", "read"}, {"seq", 1}}));
  auto read = a->next_event("receipt");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->at("status").as_string(), "read");
  EXPECT_EQ(read->at("seq").as_int64(), 1);
  // Backwards is a no-op, not an error, and sends nothing.
  expect_ok(b->request({{"type", "mark"}, {"conversation", conv}, {"status", "read"}, {"seq", 1}}));
  EXPECT_TRUE(a->no_event("receipt"));
  // The marking connection gets no receipt of its own mark.
  EXPECT_TRUE(b->no_event("receipt", 100ms));
}

TEST_F(ChatTest, ReadMarkSendsOnlyAReadReceiptAndBeyondLastCountsAsLast) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto conv = conversation_of(alice, bob);
  expect_ok(send(*a, bob, "one", "c1"));
  expect_ok(
      b->request({{"type", "mark"}, {"conversation", conv}, {"status", "read"}, {"seq", 99}}));
  auto receipt = a->next_event("receipt");
  ASSERT_TRUE(receipt);
  EXPECT_EQ(receipt->at("status").as_string(), "read");
  EXPECT_EQ(receipt->at("seq").as_int64(), 1);
  EXPECT_TRUE(a->no_event("receipt"));
  expect_error(
      b->request({{"type", "mark"}, {"conversation", conv}, {"status", "read"}, {"seq", 0}}),
      "bad_request");
  expect_error(
      b->request({{"type", "mark"}, {"conversation", conv}, {"status", "seen"}, {"seq", 1}}),
      "bad_request");
}

TEST_F(ChatTest, MarkersOtherDevicesFollowTheReadState) {
  auto [alice, a] = online_user("alice");
  auto [bob, phone] = online_user("bob");
  auto laptop = connect();
  login(*laptop, bob);
  expect_ok(send(*a, bob, "one", "c1"));
  ASSERT_TRUE(phone->next_event("message"));
  expect_ok(phone->request({{"type", "mark"},
                            {"conversation", conversation_of(alice, bob)},
                            {"status", "read"},
                            {"seq", 1}}));
  auto on_laptop = laptop->next_event("receipt");
  ASSERT_TRUE(on_laptop);
  EXPECT_EQ(on_laptop->at("user_id").as_string(), bob.id);
  EXPECT_EQ(on_laptop->at("status").as_string(), "read");
}

TEST_F(ChatTest, ReceiptsReachTheSenderAfterReconnecting) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto conv = conversation_of(alice, bob);
  expect_ok(send(*a, bob, "one", "c1"));
  expect_ok(send(*a, bob, "two", "c2"));
  a.reset();  // Alice goes offline
  await_offline(alice);
  expect_ok(
      b->request({{"type", "mark"}, {"conversation", conv}, {"status", "delivered"}, {"seq", 2}}));
  expect_ok(b->request({{"type", "mark"}, {"conversation", conv}, {"status", "read"}, {"seq", 1}}));
  auto again = connect();
  auto events = login_with_token(*again, alice);
  ASSERT_EQ(events.size(), 2u);
  std::map<std::string, std::int64_t> by_status;
  for (const auto& e : events) {
    EXPECT_EQ(e.at("type").as_string(), "receipt");
    EXPECT_EQ(e.at("user_id").as_string(), bob.id);
    by_status[std::string(e.at("status").as_string())] = e.at("seq").as_int64();
  }
  EXPECT_EQ(by_status["delivered"], 2);
  EXPECT_EQ(by_status["read"], 1);
}

TEST_F(ChatTest, RepeatedClientMsgIdYieldsOneMessageAndTheSameOk) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto first = send(*a, bob, "once", "same-id");
  auto second = send(*a, bob, "different text", "same-id");
  expect_ok(first);
  first.erase("re");
  second.erase("re");
  EXPECT_EQ(first, second);
  ASSERT_TRUE(b->next_event("message"));
  EXPECT_TRUE(b->no_event("message"));
  // Also across a reconnect.
  a.reset();
  auto again = connect();
  login_with_token(*again, alice);
  auto third = send(*again, bob, "retry", "same-id");
  third.erase("re");
  EXPECT_EQ(first, third);
  auto history =
      again->request({{"type", "history"}, {"conversation", conversation_of(alice, bob)}});
  EXPECT_EQ(history.at("messages").as_array().size(), 1u);
}

// The writer stores a batch without looking for repeats first; a batch that
// holds one is undone and written again. Whatever the batching, the repeat
// gets the stored message and the new sends around it keep a gapless seq.
TEST_F(ChatTest, RepeatAmongNewSendsKeepsTheirSeqGapless) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto first = send(*a, bob, "first", "c0");
  expect_ok(first);
  ASSERT_EQ(first.at("seq").as_int64(), 1);
  constexpr int kNew = 50;
  for (int i = 1; i <= kNew; ++i) {
    a->send({{"type", "send"},
             {"id", "r" + std::to_string(i)},
             {"to", bob.id},
             {"message", "new"},
             {"client_msg_id", "c" + std::to_string(i)}});
    if (i == kNew / 2) {
      a->send({{"type", "send"},
               {"id", "repeat"},
               {"to", bob.id},
               {"message", "again"},
               {"client_msg_id", "c0"}});
    }
  }
  std::vector<std::int64_t> seqs;
  for (int replies = 0; replies < kNew + 1; ++replies) {
    auto frame = a->receive();
    ASSERT_TRUE(frame);
    ASSERT_EQ(frame->at("type").as_string(), "ok") << json::serialize(*frame);
    if (frame->at("re").as_string() == "repeat") {
      EXPECT_EQ(frame->at("message_id"), first.at("message_id"));
      EXPECT_EQ(frame->at("seq").as_int64(), 1);
    } else {
      seqs.push_back(frame->at("seq").as_int64());
    }
  }
  std::vector<std::int64_t> expected(kNew);
  std::iota(expected.begin(), expected.end(), 2);
  EXPECT_EQ(seqs, expected);
  for (int i = 0; i < kNew + 1; ++i) ASSERT_TRUE(b->next_event("message"));
  EXPECT_TRUE(b->no_event("message"));
  // The repeat went through the undo-and-rewrite path.
  EXPECT_THAT(http_get(server_->port(), "/metrics").body,
              testing::ContainsRegex("parley_session_write_batches_rewritten_total [1-9]"));
}

// Once both conversations exist, the writer stores a batch of 1:1 sends in
// one statement, which gives each conversation's sends consecutive seqs in
// the order they arrived, however the two conversations interleave.
TEST_F(ChatTest, InterleavedSendsToKnownConversationsKeepTheirOrder) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  expect_ok(send(*a, bob, "first", "b0"));
  expect_ok(send(*a, carol, "first", "c0"));
  constexpr int kSends = 60;
  for (int i = 1; i <= kSends; ++i) {
    const bool to_bob = i % 3 != 0;
    a->send({{"type", "send"},
             {"id", std::to_string(i)},
             {"to", (to_bob ? bob : carol).id},
             {"message", std::to_string(i)},
             {"client_msg_id", "m" + std::to_string(i)}});
  }
  std::map<std::string, std::int64_t> seq_of;
  for (int replies = 0; replies < kSends; ++replies) {
    auto frame = a->receive();
    ASSERT_TRUE(frame);
    ASSERT_EQ(frame->at("type").as_string(), "ok") << json::serialize(*frame);
    seq_of[std::string(frame->at("re").as_string())] = frame->at("seq").as_int64();
  }
  std::int64_t next_to_bob = 2;
  std::int64_t next_to_carol = 2;
  for (int i = 1; i <= kSends; ++i) {
    auto& next = i % 3 != 0 ? next_to_bob : next_to_carol;
    EXPECT_EQ(seq_of.at(std::to_string(i)), next++) << "send " << i;
  }
  // Each recipient gets its conversation's messages in seq order, once.
  for (auto& [connection, count] :
       {std::pair{b.get(), next_to_bob - 1}, std::pair{c.get(), next_to_carol - 1}}) {
    for (std::int64_t seq = 1; seq <= count; ++seq) {
      auto event = connection->next_event("message");
      ASSERT_TRUE(event);
      EXPECT_EQ(event->at("seq").as_int64(), seq);
    }
    EXPECT_TRUE(connection->no_event("message"));
  }
  const auto metrics = http_get(server_->port(), "/metrics").body;
  EXPECT_THAT(metrics,
              testing::ContainsRegex("parley_session_write_batches_single_statement_total [1-9]"));
  // Every send waited some time, however short, for its batch to start.
  EXPECT_THAT(metrics, testing::ContainsRegex(
                           "parley_session_write_queue_seconds_total (0\\.0*[1-9]|[1-9])"));
}

TEST_F(ChatTest, SimultaneousDuplicatesStoreOneMessage) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  for (int i = 0; i < 5; ++i) {
    a->send({{"type", "send"},
             {"id", "d" + std::to_string(i)},
             {"to", bob.id},
             {"message", "x"},
             {"client_msg_id", "dup"}});
  }
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto frame = a->receive();
    ASSERT_TRUE(frame);
    ASSERT_EQ(frame->at("type").as_string(), "ok");
    ids.insert(std::string(frame->at("message_id").as_string()));
  }
  EXPECT_EQ(ids.size(), 1u);
  ASSERT_TRUE(b->next_event("message"));
  EXPECT_TRUE(b->no_event("message"));
}

TEST_F(ChatTest, BothSidesSendingConcurrentlyGetGaplessSeq) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  constexpr int kEach = 100;
  auto pump = [&](WsClient& client, const User& to, const std::string& prefix) {
    for (int i = 0; i < kEach; ++i) {
      client.send({{"type", "send"},
                   {"id", prefix + std::to_string(i)},
                   {"to", to.id},
                   {"message", prefix},
                   {"client_msg_id", prefix + std::to_string(i)}});
    }
  };
  std::thread ta([&] { pump(*a, bob, "a"); });
  std::thread tb([&] { pump(*b, alice, "b"); });
  ta.join();
  tb.join();
  std::set<std::int64_t> seqs;
  auto collect = [&](WsClient& client) {
    int oks = 0;
    while (oks < kEach) {
      auto frame = client.receive(10s);
      ASSERT_TRUE(frame);
      if (frame->contains("re")) {
        ASSERT_EQ(frame->at("type").as_string(), "ok") << json::serialize(*frame);
        seqs.insert(frame->at("seq").as_int64());
        ++oks;
      }
    }
  };
  collect(*a);
  collect(*b);
  ASSERT_EQ(seqs.size(), 2u * kEach);
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), 2 * kEach);
}

TEST_F(ChatTest, HistoryPagesBackwardsInAscendingOrder) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto conv = conversation_of(alice, bob);
  for (int i = 1; i <= 7; ++i)
    expect_ok(send(*a, bob, "m" + std::to_string(i), "c" + std::to_string(i)));
  auto latest = a->request({{"type", "history"}, {"conversation", conv}, {"limit", 3}});
  expect_ok(latest);
  auto messages = latest.at("messages").as_array();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].at("seq").as_int64(), 5);
  EXPECT_EQ(messages[2].at("seq").as_int64(), 7);
  auto older =
      a->request({{"type", "history"}, {"conversation", conv}, {"limit", 3}, {"before_seq", 5}});
  messages = older.at("messages").as_array();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].at("seq").as_int64(), 2);
  EXPECT_EQ(messages[2].at("seq").as_int64(), 4);
  EXPECT_EQ(messages[0].at("message").as_string(), "m2");
  auto oldest = a->request({{"type", "history"}, {"conversation", conv}, {"before_seq", 2}});
  ASSERT_EQ(oldest.at("messages").as_array().size(), 1u);
  expect_error(a->request({{"type", "history"}, {"conversation", conv}, {"limit", 0}}),
               "bad_request");
  auto capped = a->request({{"type", "history"}, {"conversation", conv}, {"limit", 1000}});
  expect_ok(capped);
}

TEST_F(ChatTest, HistoryShowsStatusFromEachSidesPointOfView) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto conv = conversation_of(alice, bob);
  for (int i = 1; i <= 3; ++i) expect_ok(send(*a, bob, "m", "c" + std::to_string(i)));
  expect_ok(
      b->request({{"type", "mark"}, {"conversation", conv}, {"status", "delivered"}, {"seq", 2}}));
  expect_ok(b->request({{"type", "mark"}, {"conversation", conv}, {"status", "read"}, {"seq", 1}}));
  auto mine = a->request({{"type", "history"}, {"conversation", conv}}).at("messages").as_array();
  ASSERT_EQ(mine.size(), 3u);
  EXPECT_EQ(mine[0].at("status").as_string(), "read");
  EXPECT_EQ(mine[1].at("status").as_string(), "delivered");
  EXPECT_EQ(mine[2].at("status").as_string(), "sent");
  auto theirs = b->request({{"type", "history"}, {"conversation", conv}}).at("messages").as_array();
  EXPECT_EQ(theirs[0].at("status").as_string(), "read");
  EXPECT_EQ(theirs[1].at("status").as_string(), "delivered");
  EXPECT_EQ(theirs[2].at("status").as_string(), "sent");
}

// A cursor the server did not give is the client's mistake, whatever it
// looks like: never a failed statement (internal) in the server's logs.
TEST_F(ChatTest, AForgedConversationsCursorIsABadRequest) {
  auto [alice, a] = online_user("alice");
  for (const std::string cursor :
       {"xxx|yyy", "2024-13-45 99:99:99+00|d:1:2", "2024-01-01 00:00:00+00", "|d:1:2", "x|"}) {
    expect_error(a->request({{"type", "conversations"}, {"cursor", cursor}}), "bad_request");
  }
  expect_ok(a->request({{"type", "conversations"}, {"cursor", "2024-01-01 00:00:00.5+00|d:1:2"}}));
}

TEST_F(ChatTest, ConversationsListNewestFirstWithUnreadCounts) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [carol, c] = online_user("carol");
  expect_ok(send(*b, alice, "from bob 1", "b1"));
  expect_ok(send(*b, alice, "from bob 2", "b2"));
  expect_ok(send(*c, alice, "from carol", "c1"));
  expect_ok(a->request({{"type", "mark"},
                        {"conversation", conversation_of(alice, bob)},
                        {"status", "read"},
                        {"seq", 1}}));
  auto reply = a->request({{"type", "conversations"}});
  expect_ok(reply);
  auto list = reply.at("conversations").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("conversation").as_string(), conversation_of(alice, carol));
  EXPECT_EQ(list[0].at("unread").as_int64(), 1);
  EXPECT_EQ(list[0].at("read_seq").as_int64(), 0);
  EXPECT_EQ(list[1].at("conversation").as_string(), conversation_of(alice, bob));
  EXPECT_EQ(list[1].at("unread").as_int64(), 1);
  EXPECT_EQ(list[1].at("read_seq").as_int64(), 1);
  EXPECT_EQ(list[1].at("last_message").at("message").as_string(), "from bob 2");
  // Bob's view: Alice read up to 1.
  auto bobs = b->request({{"type", "conversations"}}).at("conversations").as_array();
  ASSERT_EQ(bobs.size(), 1u);
  EXPECT_EQ(bobs[0].at("peer_read_seq").as_int64(), 1);
  EXPECT_EQ(bobs[0].at("unread").as_int64(), 0);
  auto [dave, d] = online_user("dave");
  EXPECT_TRUE(d->request({{"type", "conversations"}}).at("conversations").as_array().empty());
}

TEST_F(ChatTest, TypingReachesThePeerOnly) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  expect_ok(send(*a, bob, "hello", "c1"));
  expect_ok(a->request({{"type", "typing"}, {"conversation", conversation_of(alice, bob)}}));
  auto typing = b->next_event("typing");
  ASSERT_TRUE(typing);
  EXPECT_EQ(typing->at("user_id").as_string(), alice.id);
  EXPECT_EQ(typing->at("conversation").as_string(), conversation_of(alice, bob));
  EXPECT_TRUE(a->no_event("typing", 100ms));
}

TEST_F(ChatTest, TypingReachesOnlySomeoneTheTyperHasExchangedAMessageWith) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto conv = conversation_of(alice, bob);
  // Answered ok, as typing to a user who does not exist: it tells nothing.
  expect_ok(a->request({{"type", "typing"}, {"conversation", conv}}));
  expect_ok(send(*a, bob, "hello", "c1"));
  expect_ok(a->request({{"type", "typing"}, {"conversation", conv}}));
  expect_ok(a->request({{"type", "typing"}, {"conversation", conv}}));
  // Bob's message and typing events, in the order they were handed to his
  // connection: each was handed over before Alice's request got its ok.
  std::vector<std::string> seen;
  while (seen.size() < 3) {
    const auto frame = b->receive();
    ASSERT_TRUE(frame) << "events so far: " << seen.size();
    if (frame->contains("re")) continue;
    const std::string type(frame->at("type").as_string());
    if (type == "message" || type == "typing") seen.push_back(type);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"message", "typing", "typing"}));
  EXPECT_TRUE(b->no_event("typing"));
}

TEST_F(ChatTest, OutsidersAreForbidden) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto [eve, e] = online_user("eve");
  const auto conv = conversation_of(alice, bob);
  expect_ok(send(*a, bob, "private", "c1"));
  expect_error(e->request({{"type", "history"}, {"conversation", conv}}), "forbidden");
  expect_error(
      e->request({{"type", "mark"}, {"conversation", conv}, {"status", "read"}, {"seq", 1}}),
      "forbidden");
  expect_error(e->request({{"type", "typing"}, {"conversation", conv}}), "forbidden");
  // No group 1 exists: unknown groups are not_found for everyone.
  expect_error(e->request({{"type", "history"}, {"conversation", "g:1"}}), "not_found");
  expect_error(e->request({{"type", "history"}, {"conversation", "nonsense"}}), "bad_request");
  EXPECT_TRUE(a->no_event("receipt", 100ms));
}

TEST_F(ChatTest, SendIsValidated) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto req = [&](json::object fields) {
    fields["type"] = "send";
    return a->request(std::move(fields));
  };
  expect_error(req({{"message", "x"}, {"client_msg_id", "1"}}), "bad_request");
  expect_error(req({{"to", bob.id}, {"group_id", "1"}, {"message", "x"}, {"client_msg_id", "2"}}),
               "bad_request");
  expect_error(req({{"to", bob.id}, {"message", ""}, {"client_msg_id", "3"}}), "bad_request");
  expect_error(req({{"to", bob.id}, {"message", "x"}}), "bad_request");
  expect_error(req({{"to", bob.id}, {"message", "x"}, {"client_msg_id", std::string(65, 'c')}}),
               "bad_request");
  expect_error(req({{"to", alice.id}, {"message", "x"}, {"client_msg_id", "4"}}), "bad_request");
  expect_error(req({{"to", "424242"}, {"message", "x"}, {"client_msg_id", "5"}}), "not_found");
  expect_error(req({{"to", "bob"}, {"message", "x"}, {"client_msg_id", "6"}}), "not_found");
  expect_error(req({{"to", bob.id}, {"message", 42}, {"client_msg_id", "7"}}), "bad_request");
  EXPECT_TRUE(b->no_event("message"));
}

class ShortMessagesTest : public SessionTest {
 protected:
  std::string session_config() const override { return "      max_message_length: 10\n"; }
};

TEST_F(ShortMessagesTest, LongerThanTheLimitIsTooLarge) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  expect_ok(send(*a, bob, "0123456789", "ok"));
  // Ten characters of two bytes each are still ten characters.
  expect_ok(send(*a, bob, "éééééééééé", "accents"));
  expect_error(send(*a, bob, "01234567890", "long"), "too_large");
}

TEST_F(ChatTest, MarkAndHistoryWithAUserWhoDoesNotExistAreNotFound) {
  auto [alice, a] = online_user("alice");
  const std::string nobody = "999999";
  const std::string conversation =
      alice.id < nobody ? "d:" + alice.id + ":" + nobody : "d:" + nobody + ":" + alice.id;
  expect_error(
      a->request(
          {{"type", "mark"}, {"conversation", conversation}, {"status", "read"}, {"seq", 1}}),
      "not_found");
  expect_error(a->request({{"type", "history"}, {"conversation", conversation}}), "not_found");
}

}  // namespace
}  // namespace parley::test
