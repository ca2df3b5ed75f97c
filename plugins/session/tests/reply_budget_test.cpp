// One large reply never cuts off the client that asked for it: history and
// conversations pages stay within a byte budget the client can count on,
// and conversations pages on with next_cursor.
#include <set>

#include "session_fixture.hpp"

namespace parley::test {
namespace {

class ReplyBudgetTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    auto options = server_options();
    options.server_yaml = "  rate_limit:\n    requests_per_second: 100000\n    burst: 100000\n";
    options.plugins_yaml += "      limits:\n        registrations_per_address_per_hour: 100000\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }
  // 4000 x U+0001: 4000 bytes stored, about 24 KB once JSON-escaped.
  static std::string escape_heavy() { return std::string(3999, '\x01') + "!"; }
};

TEST_F(ReplyBudgetTest, HistoryOfEscapeHeavyMessagesIsAnsweredInPagesThatReachEveryMessage) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  for (int i = 0; i < 200; ++i) {
    a->send({{"type", "send"},
             {"id", "s" + std::to_string(i)},
             {"to", bob.id},
             {"message", escape_heavy()},
             {"client_msg_id", "c" + std::to_string(i)}});
  }
  for (int answered = 0; answered < 200;) {
    auto frame = a->receive(30s);
    ASSERT_TRUE(frame);
    if (frame->contains("re")) ++answered;
  }
  std::set<std::int64_t> seen;
  std::optional<std::int64_t> before;
  for (int pages = 0; pages < 50; ++pages) {
    json::object request{
        {"type", "history"}, {"conversation", conversation_of(alice, bob)}, {"limit", 200}};
    if (before) request["before_seq"] = *before;
    auto reply = a->request(request, 30s);
    ASSERT_EQ(reply.at("type").as_string(), "ok") << "the reply cut off its requester";
    const auto& messages = reply.at("messages").as_array();
    if (messages.empty()) break;
    for (const auto& m : messages) seen.insert(m.at("seq").as_int64());
    before = messages.front().at("seq").as_int64();
    if (!reply.contains("more") && *before == 1) break;
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST_F(ReplyBudgetTest, ConversationsPageOnWithNextCursorAndCoverEveryConversation) {
  auto [alice, a] = online_user("alice");
  auto registrar = connect();
  std::vector<User> peers;
  for (int i = 0; i < 300; ++i) peers.push_back(register_user(*registrar, "peer"));
  for (int i = 0; i < 300; ++i) {
    a->send({{"type", "send"},
             {"id", "s" + std::to_string(i)},
             {"to", peers[static_cast<std::size_t>(i)].id},
             {"message", escape_heavy()},
             {"client_msg_id", "c" + std::to_string(i)}});
  }
  for (int answered = 0; answered < 300;) {
    auto frame = a->receive(30s);
    ASSERT_TRUE(frame);
    if (frame->contains("re")) ++answered;
  }
  std::set<std::string> seen;
  std::optional<std::string> cursor;
  int pages = 0;
  do {
    json::object request{{"type", "conversations"}, {"limit", 500}};
    if (cursor) request["cursor"] = *cursor;
    auto reply = a->request(request, 30s);
    ASSERT_EQ(reply.at("type").as_string(), "ok") << "the reply cut off its requester";
    for (const auto& c : reply.at("conversations").as_array())
      EXPECT_TRUE(seen.insert(std::string(c.at("conversation").as_string())).second)
          << "a conversation came twice";
    cursor.reset();
    if (const auto* next = reply.if_contains("next_cursor"))
      cursor = std::string(next->as_string());
    ++pages;
  } while (cursor && pages < 50);
  EXPECT_EQ(seen.size(), 300u);
  EXPECT_GT(pages, 1) << "7 MB of conversations came in one reply";
  expect_error(a->request({{"type", "conversations"}, {"cursor", "nonsense"}}), "bad_request");
}

}  // namespace
}  // namespace parley::test
