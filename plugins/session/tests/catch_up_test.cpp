// The login catch-up delivers any backlog the server accepted to a client
// that reads, in storage order, however large: it is sent page by page as
// the client reads, so it never trips the slow-reader limit.
#include <gmock/gmock.h>

#include "session_fixture.hpp"

namespace parley::test {
namespace {

class CatchUpTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    auto options = server_options();
    // Senders here pipeline thousands of messages; the limit under test is
    // the receiver's send queue (the default 4 MiB).
    options.server_yaml = "  rate_limit:\n    requests_per_second: 100000\n    burst: 100000\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }

  // Sends `count` messages of `text` (numbered) from `from` to `to`, pipelined.
  void send_many(WsClient& from, const User& to, int count, const std::string& text) {
    for (int i = 0; i < count; ++i) {
      from.send({{"type", "send"},
                 {"id", "s" + std::to_string(i)},
                 {"to", to.id},
                 {"message", std::to_string(i) + " " + text},
                 {"client_msg_id", "c" + std::to_string(i)}});
    }
    for (int acked = 0; acked < count;) {
      auto frame = from.receive(30s);
      ASSERT_TRUE(frame) << "only " << acked << " sends answered";
      if (!frame->contains("re")) continue;
      ASSERT_EQ(frame->at("type").as_string(), "ok") << json::serialize(*frame);
      ++acked;
    }
  }

  // Logs in as `user` and checks the catch-up holds messages 0..count-1 in order.
  void expect_catch_up(User& user, int count) {
    auto client = connect();
    const auto events = login(*client, user);
    ASSERT_EQ(events.size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      const std::string text(events[static_cast<std::size_t>(i)].at("message").as_string());
      ASSERT_EQ(text.substr(0, text.find(' ')), std::to_string(i)) << "out of order at " << i;
      EXPECT_EQ(events[static_cast<std::size_t>(i)].at("seq").as_int64(), i + 1);
    }
    EXPECT_TRUE(client->request({{"type", "ping"}}).at("type") == "ok")
        << "the connection did not survive its catch-up";
  }
};

TEST_F(CatchUpTest, ThreeHundredLargePendingMessagesArriveInFull) {
  auto [sender, sender_client] = online_user("sender");
  User reader = offline_user("reader");
  // 4000 emoji: 16 KB per message, 4.8 MB in all, over the 4 MiB queue limit.
  std::string emoji;
  for (int i = 0; i < 3990; ++i) emoji += "\xF0\x9F\x98\x80";
  send_many(*sender_client, reader, 300, emoji);
  expect_catch_up(reader, 300);
}

TEST_F(CatchUpTest, FiveThousandPendingMessagesArriveInFullAndInOrder) {
  auto [sender, sender_client] = online_user("sender");
  User reader = offline_user("reader");
  send_many(*sender_client, reader, 5000, std::string(600, 'x'));
  expect_catch_up(reader, 5000);
}

TEST_F(CatchUpTest, MessagesSentDuringTheCatchUpArriveOnceAfterIt) {
  auto [sender, sender_client] = online_user("sender");
  User reader = offline_user("reader");
  send_many(*sender_client, reader, 2000, std::string(500, 'y'));
  auto client = connect();
  client->send(
      {{"type", "login"}, {"id", "login"}, {"email", reader.email}, {"password", reader.password}});
  // Sent while the catch-up is being read and sent.
  expect_ok(send(*sender_client, reader, "2000 live", "live"));
  std::vector<std::int64_t> seqs;
  bool synced = false;
  while (true) {
    auto frame = client->receive(20s);
    ASSERT_TRUE(frame) << "stopped after " << seqs.size() << " messages";
    const auto type = frame->at("type").as_string();
    if (type == "synced") synced = true;
    if (type == "message") seqs.push_back(frame->at("seq").as_int64());
    if (seqs.size() == 2001) break;
    ASSERT_LT(seqs.size(), 2002u);
  }
  ASSERT_TRUE(synced || client->next_event("synced", 10s));
  for (std::size_t i = 0; i < seqs.size(); ++i)
    EXPECT_EQ(seqs[i], static_cast<std::int64_t>(i + 1));
  EXPECT_TRUE(client->no_event("message")) << "a message arrived twice";
}

// A client that logs in and stops reading stalls its catch-up; the live
// messages held for it meanwhile count against the send queue's limit, so
// it is cut off as a slow reader instead of pinning the server's memory.
TEST_F(CatchUpTest, LiveMessagesHeldForAClientThatStopsReadingAreBounded) {
  auto [sender, sender_client] = online_user("sender");
  User reader = offline_user("reader");
  // A backlog larger than what the sockets buffer on loopback (about 4 MB):
  // the catch-up stalls once the reader stops reading.
  send_many(*sender_client, reader, 1300, std::string(3900, 'b'));
  WsClient stalled(server_->port(), {.receive_buffer = 4096});
  expect_ok(
      stalled.request({{"type", "login"}, {"email", reader.email}, {"password", reader.password}}));
  stalled.pause_reading();
  // 16 MB of live messages, four times the default max_queued_bytes, held
  // for the stalled catch-up.
  send_many(*sender_client, reader, 4000, std::string(3900, 'l'));
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (server_->log().find("send queue over its limit") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  // Before, up to 65,536 frames were held whatever their size: these 16 MB
  // would all have been kept, and no limit would have been met.
  EXPECT_THAT(server_->log(), ::testing::HasSubstr("send queue over its limit"))
      << "the stalled reader was never cut off";
}

}  // namespace
}  // namespace parley::test
