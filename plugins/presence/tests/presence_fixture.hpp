// A real parleyd with the session and presence plugins over a private
// PostgreSQL, real WebSocket clients, and helpers to make users share a
// conversation. Timing is configured short (seconds) and awaited, not slept.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "parleyd_process.hpp"
#include "postgres.hpp"
#include "ws_client.hpp"

namespace parley::test {

namespace json = boost::json;

struct User {
  std::string id;
  std::string email;
  std::string password;
  std::string token;
};

class PresenceTest : public ::testing::Test {
 protected:
  // The presence plugin's config block (indented by 6). By default nobody
  // goes offline by silence or grace during a test unless it waits for it.
  virtual std::string presence_config() const {
    return "      offline_after_seconds: 600\n      grace_seconds: 1\n";
  }
  // More entries for the `plugins:` list (e.g. the group plugin).
  virtual std::string extra_plugins_yaml() const { return ""; }

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string db = std::string(info->test_suite_name()) + "_" + info->name();
    for (auto& c : db) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ParleydProcess::Options o;
    database_url_ = TestPostgres::shared().create_database(db.substr(0, 60));
    o.database_url = database_url_;
    // Activity events every 50 ms at most, so that a frame after a silence
    // is seen at once rather than after the default 5 s throttle.
    o.server_yaml = "  activity_interval_ms: 50\n";
    o.plugins_yaml = session_plugin_yaml() + "  - name: presence\n    config:\n" +
                     presence_config() + extra_plugins_yaml();
    server_ = std::make_unique<ParleydProcess>(o);
  }

  void TearDown() override {
    if (HasFailure() && server_)
      std::cerr << "--- parleyd log ---\n" << server_->log() << "--- end ---\n";
  }

  std::unique_ptr<WsClient> connect() { return std::make_unique<WsClient>(server_->port()); }

  static void expect_ok(const json::object& reply) {
    EXPECT_EQ(reply.at("type").as_string(), "ok") << json::serialize(reply);
  }
  static void expect_error(const json::object& reply, const std::string& code) {
    ASSERT_EQ(reply.at("type").as_string(), "error") << json::serialize(reply);
    EXPECT_EQ(reply.at("code").as_string(), code) << json::serialize(reply);
  }

  User register_user(WsClient& client, const std::string& name) {
    static std::atomic<int> counter{0};
    User u;
    u.email = name + "." + std::to_string(counter++) + "@example.com";
    u.password = "correct horse " + name;
    auto reply = client.request(
        {{"type", "register"}, {"name", name}, {"email", u.email}, {"password", u.password}});
    expect_ok(reply);
    u.id = std::string(reply.at("user_id").as_string());
    return u;
  }

  // Logs in and consumes the catch-up up to "synced".
  static void login(WsClient& client, User& user) {
    auto reply =
        client.request({{"type", "login"}, {"email", user.email}, {"password", user.password}});
    expect_ok(reply);
    user.token = std::string(reply.at("token").as_string());
    while (auto frame = client.receive(10s)) {
      if (frame->at("type").as_string() == "synced") return;
    }
    ADD_FAILURE() << "no synced after login";
  }

  std::pair<User, std::unique_ptr<WsClient>> online_user(const std::string& name) {
    auto client = connect();
    User u = register_user(*client, name);
    login(*client, u);
    return {u, std::move(client)};
  }

  // A 1:1 message from `from` (logged in on `client`) to `to`: they now share.
  static void message(WsClient& client, const User& to) {
    static std::atomic<int> counter{0};
    expect_ok(client.request({{"type", "send"},
                              {"to", to.id},
                              {"message", "hi"},
                              {"client_msg_id", "m" + std::to_string(counter++)}}));
  }

  static json::object subscribe(WsClient& client, std::initializer_list<const User*> users) {
    json::array ids;
    for (const auto* u : users) ids.emplace_back(u->id);
    return client.request({{"type", "presence.subscribe"}, {"users", std::move(ids)}});
  }

  // The presence entry of `user` in a subscribe result.
  static json::object entry(const json::object& reply, const User& user) {
    for (const auto& item : reply.at("presence").as_array()) {
      if (item.at("user_id").as_string() == user.id) return item.as_object();
    }
    ADD_FAILURE() << "no entry for " << user.id << " in " << json::serialize(reply);
    return {};
  }

  // The next presence event about `user`, skipping others'.
  static std::optional<json::object> presence_of(WsClient& client, const User& user,
                                                 std::chrono::milliseconds timeout = 10s) {
    while (auto event = client.next_event("presence", timeout)) {
      if (event->at("user_id").as_string() == user.id) return event;
    }
    return std::nullopt;
  }

  std::string database_url_;
  std::unique_ptr<ParleydProcess> server_;
};

}  // namespace parley::test
