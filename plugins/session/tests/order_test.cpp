// Requests of one connection take effect in the order they arrived
// (docs/protocol.md, "Order"): pipelined sends are stored in send order, and
// a request pipelined behind a login or a send sees its effect.
#include <map>

#include "session_fixture.hpp"

namespace parley::test {
namespace {

class OrderTest : public SessionTest {};

// Sends `count` requests without waiting, then collects the replies by id.
std::map<std::string, json::object> pipeline(WsClient& client,
                                             const std::vector<json::object>& requests) {
  for (const auto& r : requests) client.send(r);
  std::map<std::string, json::object> replies;
  while (replies.size() < requests.size()) {
    auto frame = client.receive(20s);
    if (!frame) {
      ADD_FAILURE() << "only " << replies.size() << " of " << requests.size() << " replies";
      break;
    }
    if (const auto* re = frame->if_contains("re")) replies[std::string(re->as_string())] = *frame;
  }
  return replies;
}

TEST_F(OrderTest, PipelinedSendsAreStoredInSendOrder) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  constexpr int kSends = 300;
  std::vector<json::object> requests;
  for (int i = 0; i < kSends; ++i) {
    requests.push_back({{"type", "send"},
                        {"id", "s" + std::to_string(i)},
                        {"to", bob.id},
                        {"message", "message " + std::to_string(i)},
                        {"client_msg_id", "c" + std::to_string(i)}});
  }
  auto replies = pipeline(*a, requests);
  ASSERT_EQ(replies.size(), static_cast<std::size_t>(kSends));
  for (int i = 0; i < kSends; ++i) {
    const auto& reply = replies["s" + std::to_string(i)];
    ASSERT_EQ(reply.at("type").as_string(), "ok") << json::serialize(reply);
    EXPECT_EQ(reply.at("seq").as_int64(), i + 1) << "send " << i << " was stored out of order";
  }
  // Bob receives them live in the same order.
  for (int i = 0; i < kSends; ++i) {
    auto event = b->next_event("message", 10s);
    ASSERT_TRUE(event) << "message " << i << " did not arrive";
    EXPECT_EQ(event->at("message").as_string(), "message " + std::to_string(i));
  }
}

TEST_F(OrderTest, RequestsPipelinedBehindALoginAreHandledAsLoggedIn) {
  auto first = connect();
  User alice = register_user(*first, "alice");
  auto client = connect();
  auto replies = pipeline(
      *client,
      {{{"type", "login"}, {"id", "login"}, {"email", alice.email}, {"password", alice.password}},
       {{"type", "conversations"}, {"id", "list"}},
       {{"type", "user.get"}, {"id", "me"}, {"user_id", alice.id}}});
  EXPECT_EQ(replies["login"].at("type").as_string(), "ok") << json::serialize(replies["login"]);
  EXPECT_EQ(replies["list"].at("type").as_string(), "ok") << json::serialize(replies["list"]);
  EXPECT_EQ(replies["me"].at("type").as_string(), "ok") << json::serialize(replies["me"]);
}

TEST_F(OrderTest, AFailedLoginLeavesTheRequestsBehindItUnauthenticated) {
  auto first = connect();
  User alice = register_user(*first, "alice");
  auto client = connect();
  auto replies = pipeline(
      *client, {{{"type", "login"}, {"id", "login"}, {"email", alice.email}, {"password", "wrong"}},
                {{"type", "conversations"}, {"id", "list"}}});
  expect_error(replies["login"], "unauthenticated");
  expect_error(replies["list"], "unauthenticated");
}

TEST_F(OrderTest, HistoryPipelinedBehindSendsSeesThem) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  std::vector<json::object> requests;
  for (int i = 0; i < 20; ++i) {
    requests.push_back({{"type", "send"},
                        {"id", "s" + std::to_string(i)},
                        {"to", bob.id},
                        {"message", "m" + std::to_string(i)},
                        {"client_msg_id", "h" + std::to_string(i)}});
  }
  requests.push_back({{"type", "history"},
                      {"id", "history"},
                      {"conversation", conversation_of(alice, bob)},
                      {"limit", 200}});
  auto replies = pipeline(*a, requests);
  const auto& history = replies["history"];
  ASSERT_EQ(history.at("type").as_string(), "ok") << json::serialize(history);
  const auto& messages = history.at("messages").as_array();
  ASSERT_EQ(messages.size(), 20u);
  for (std::size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(messages[i].at("message").as_string(), "m" + std::to_string(i));
  }
}

}  // namespace
}  // namespace parley::test
