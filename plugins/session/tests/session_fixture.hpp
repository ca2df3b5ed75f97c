// A real parleyd with the session plugin over a private PostgreSQL, and
// helpers to register and log in users through real WebSocket clients.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <pqxx/pqxx>

#include "parleyd_process.hpp"
#include "postgres.hpp"
#include "ws_client.hpp"

namespace parley::test {

namespace json = boost::json;

struct User {
  std::string id;
  std::string name;
  std::string email;
  std::string password;
  std::string token;
};

class SessionTest : public ::testing::Test {
 protected:
  // Extra lines for the session plugin's config block (indented by 6).
  virtual std::string session_config() const { return ""; }
  // More entries for the `plugins:` list, after session's (e.g. the group plugin).
  virtual std::string extra_plugins_yaml() const { return ""; }

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string db = std::string(info->test_suite_name()) + "_" + info->name();
    for (auto& c : db) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    database_url_ = TestPostgres::shared().create_database(db.substr(0, 60));
    server_ = std::make_unique<ParleydProcess>(server_options());
  }

  // A failed test shows what the server said: its log goes with the test's
  // directory otherwise.
  void TearDown() override {
    if (HasFailure() && server_)
      std::cerr << "--- parleyd log ---\n" << server_->log() << "--- end ---\n";
  }

  ParleydProcess::Options server_options() const {
    ParleydProcess::Options o;
    o.database_url = database_url_;
    o.plugins_yaml = session_plugin_yaml(session_config()) + extra_plugins_yaml();
    return o;
  }

  std::unique_ptr<WsClient> connect() { return std::make_unique<WsClient>(server_->port()); }

  static void expect_ok(const json::object& reply) {
    EXPECT_EQ(reply.at("type").as_string(), "ok") << json::serialize(reply);
  }
  static void expect_error(const json::object& reply, const std::string& code) {
    EXPECT_EQ(reply.at("type").as_string(), "error") << json::serialize(reply);
    if (reply.contains("code")) {
      EXPECT_EQ(reply.at("code").as_string(), code) << json::serialize(reply);
    }
  }

  User register_user(WsClient& client, const std::string& name) {
    static std::atomic<int> counter{0};
    User u;
    u.name = name;
    u.email = name + "." + std::to_string(counter++) + "@example.com";
    u.password = "correct horse " + name;
    auto reply = client.request(
        {{"type", "register"}, {"name", name}, {"email", u.email}, {"password", u.password}});
    expect_ok(reply);
    u.id = std::string(reply.at("user_id").as_string());
    return u;
  }

  // Logs `client` in with a password; consumes the catch-up up to "synced"
  // and returns the events it contained.
  std::vector<json::object> login(WsClient& client, User& user) {
    auto reply =
        client.request({{"type", "login"}, {"email", user.email}, {"password", user.password}});
    expect_ok(reply);
    user.token = std::string(reply.at("token").as_string());
    return until_synced(client);
  }

  std::vector<json::object> login_with_token(WsClient& client, User& user) {
    auto reply = client.request({{"type", "login"}, {"token", user.token}});
    expect_ok(reply);
    return until_synced(client);
  }

  static std::vector<json::object> until_synced(WsClient& client) {
    std::vector<json::object> events;
    while (true) {
      auto frame = client.receive(10s);
      if (!frame) {
        ADD_FAILURE() << "no synced after login";
        return events;
      }
      if (frame->at("type").as_string() == "synced") return events;
      events.push_back(std::move(*frame));
    }
  }

  // Waits until the server has recorded `user` offline (the close of their
  // last connection handled): what a login catch-up compares marks with.
  void await_offline(const User& user) {
    pqxx::connection conn(database_url_);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      pqxx::nontransaction tx(conn);
      if (tx.exec_params1("SELECT offline_since IS NOT NULL FROM users WHERE id = $1",
                          std::stoll(user.id))[0]
              .as<bool>()) {
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "user " << user.id << " was never recorded offline";
  }

  // A registered user who never logged in: offline, messages to them pend.
  User offline_user(const std::string& name) {
    auto client = connect();
    return register_user(*client, name);
  }

  // A registered user logged in on a new connection.
  std::pair<User, std::unique_ptr<WsClient>> online_user(const std::string& name) {
    auto client = connect();
    User u = register_user(*client, name);
    login(*client, u);
    return {u, std::move(client)};
  }

  static std::string conversation_of(const User& a, const User& b) {
    return a.id < b.id ? "d:" + a.id + ":" + b.id : "d:" + b.id + ":" + a.id;
  }

  static json::object send(WsClient& from, const User& to, const std::string& text,
                           const std::string& client_msg_id) {
    return from.request(
        {{"type", "send"}, {"to", to.id}, {"message", text}, {"client_msg_id", client_msg_id}});
  }

  std::string database_url_;
  std::unique_ptr<ParleydProcess> server_;
};

}  // namespace parley::test
