// The SDK's example plugin, built out of tree against the installed SDK (the
// SdkOutOfTreePlugin test), loaded by parleyd beside the session plugin and
// used by real WebSocket clients: what a third party's plugin gets from the
// kernel (routing, login, delivery, errors) works without the rest of the
// tree.
#include <gtest/gtest.h>

#include <string>

#include <boost/json.hpp>

#include "parleyd_process.hpp"
#include "postgres.hpp"
#include "ws_client.hpp"

namespace parley::test {
namespace {

namespace json = boost::json;

std::string login(WsClient& client, const std::string& email, const std::string& password) {
  const auto reply = client.request({{"type", "login"}, {"email", email}, {"password", password}});
  EXPECT_EQ(reply.at("type").as_string(), "ok") << json::serialize(reply);
  EXPECT_TRUE(client.next_event("synced").has_value());
  return std::string(reply.at("user_id").as_string());
}

TEST(SdkExample, ShoutsOverWebSocketForALoggedInUser) {
  ParleydProcess::Options options;
  options.database_url = TestPostgres::shared().create_database("sdk_example_shout");
  options.plugins_yaml = session_plugin_yaml() +
                         "  - name: shout\n"
                         "    library: " PARLEY_SHOUT_PLUGIN
                         "\n"
                         "    config:\n"
                         "      max_length: 20\n";
  ParleydProcess server(options);

  WsClient stranger(server.port());
  const auto early = stranger.request({{"type", "shout"}, {"text", "hello"}});
  EXPECT_EQ(early.at("type").as_string(), "error");
  EXPECT_EQ(early.at("code").as_string(), "unauthenticated");

  WsClient phone(server.port());
  WsClient laptop(server.port());
  const std::string email = "ann@example.com";
  const std::string password = "correct horse battery";
  const auto registered = phone.request(
      {{"type", "register"}, {"name", "Ann"}, {"email", email}, {"password", password}});
  ASSERT_EQ(registered.at("type").as_string(), "ok") << json::serialize(registered);
  const std::string ann = login(phone, email, password);
  EXPECT_EQ(login(laptop, email, password), ann);

  const auto reply = phone.request({{"type", "shout"}, {"text", "hello, world"}});
  ASSERT_EQ(reply.at("type").as_string(), "ok") << json::serialize(reply);
  EXPECT_EQ(reply.at("text").as_string(), "HELLO, WORLD");
  // Delivered to the caller's other connections, not back to the caller's.
  const auto event = laptop.next_event("shout");
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->at("text").as_string(), "HELLO, WORLD");
  EXPECT_TRUE(phone.no_event("shout"));

  // The plugin's own config and its Failure reach the client as an error code.
  const auto loud = phone.request({{"type", "shout"}, {"text", std::string(21, 'a')}});
  EXPECT_EQ(loud.at("type").as_string(), "error");
  EXPECT_EQ(loud.at("code").as_string(), "too_large");
  const auto missing = phone.request({{"type", "shout"}});
  EXPECT_EQ(missing.at("code").as_string(), "bad_request");
  EXPECT_TRUE(laptop.no_event("shout"));
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace parley::test
