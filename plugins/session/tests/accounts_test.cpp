// Accounts and login sessions over real WebSockets and PostgreSQL.
#include <thread>

#include <pqxx/pqxx>

#include "session_fixture.hpp"

namespace parley::test {
namespace {

using AccountsTest = SessionTest;

TEST_F(AccountsTest, RegisterThenLoginWithPassword) {
  auto client = connect();
  User alice = register_user(*client, "alice");
  auto reply =
      client->request({{"type", "login"}, {"email", alice.email}, {"password", alice.password}});
  expect_ok(reply);
  EXPECT_EQ(reply.at("user_id").as_string(), alice.id);
  EXPECT_EQ(reply.at("name").as_string(), "alice");
  EXPECT_FALSE(reply.at("token").as_string().empty());
  EXPECT_TRUE(reply.at("expires_at").is_string());
  auto next = client->receive();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->at("type").as_string(), "synced");
}

TEST_F(AccountsTest, EmailIsCaseInsensitiveAndDuplicateIsConflict) {
  auto client = connect();
  User alice = register_user(*client, "alice");
  std::string upper = alice.email;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  expect_error(
      client->request({{"type", "register"}, {"name", "x"}, {"email", upper}, {"password", "pw"}}),
      "conflict");
}

TEST_F(AccountsTest, WrongPasswordAndUnknownEmailGetTheSameAnswer) {
  auto client = connect();
  User alice = register_user(*client, "alice");
  auto wrong = client->request({{"type", "login"}, {"email", alice.email}, {"password", "nope"}});
  auto unknown =
      client->request({{"type", "login"}, {"email", "nobody@example.com"}, {"password", "nope"}});
  expect_error(wrong, "unauthenticated");
  expect_error(unknown, "unauthenticated");
  EXPECT_EQ(wrong.at("message"), unknown.at("message"));
  // The connection can still log in afterwards.
  login(*client, alice);
}

TEST_F(AccountsTest, TokenLoginWorksOnAnotherConnection) {
  auto [alice, first] = online_user("alice");
  auto second = connect();
  auto reply = second->request({{"type", "login"}, {"token", alice.token}});
  expect_ok(reply);
  EXPECT_EQ(reply.at("user_id").as_string(), alice.id);
  EXPECT_EQ(reply.at("token").as_string(), alice.token);
  until_synced(*second);
  expect_ok(second->request({{"type", "user.get"}, {"user_id", alice.id}}));
}

TEST_F(AccountsTest, UnknownTokenIsUnauthenticated) {
  auto client = connect();
  expect_error(client->request({{"type", "login"}, {"token", "not-a-token"}}), "unauthenticated");
}

TEST_F(AccountsTest, LogoutRevokesTheTokenAndStopsEvents) {
  auto [alice, client] = online_user("alice");
  auto [bob, bob_client] = online_user("bob");
  expect_ok(client->request({{"type", "logout"}}));
  // Logged out: only register, login and ping are accepted now.
  expect_error(client->request({{"type", "conversations"}}), "unauthenticated");
  expect_ok(client->request({{"type", "ping"}}));
  expect_ok(send(*bob_client, alice, "are you there?", "c1"));
  EXPECT_TRUE(client->no_event("message"));
  auto other = connect();
  expect_error(other->request({{"type", "login"}, {"token", alice.token}}), "unauthenticated");
  // A password login still works, on the same connection.
  login(*client, alice);
}

TEST_F(AccountsTest, LogoutLeavesOtherSessionsAlone) {
  auto [alice, phone] = online_user("alice");
  auto laptop = connect();
  login(*laptop, alice);  // a second session with its own token
  expect_ok(phone->request({{"type", "logout"}}));
  expect_ok(laptop->request({{"type", "conversations"}}));
  auto third = connect();
  expect_ok(third->request({{"type", "login"}, {"token", alice.token}}));
}

TEST_F(AccountsTest, RequestsBeforeLoginAreUnauthenticated) {
  auto client = connect();
  for (const char* type :
       {"logout", "user.get", "user.find", "send", "mark", "history", "conversations", "typing"}) {
    expect_error(client->request({{"type", type}}), "unauthenticated");
  }
  expect_ok(client->request({{"type", "ping"}}));
}

TEST_F(AccountsTest, SecondLoginOnALoggedInConnectionIsBadRequest) {
  auto [alice, client] = online_user("alice");
  expect_error(
      client->request({{"type", "login"}, {"email", alice.email}, {"password", alice.password}}),
      "bad_request");
}

TEST_F(AccountsTest, RegisterValidatesItsFields) {
  auto client = connect();
  expect_error(client->request({{"type", "register"}, {"name", "x"}, {"email", "x@y"}}),
               "bad_request");
  expect_error(
      client->request({{"type", "register"}, {"name", ""}, {"email", "x@y"}, {"password", "p"}}),
      "bad_request");
  expect_error(
      client->request({{"type", "register"}, {"name", "x"}, {"email", "no-at"}, {"password", "p"}}),
      "bad_request");
  expect_error(
      client->request({{"type", "register"}, {"name", 5}, {"email", "x@y"}, {"password", "p"}}),
      "bad_request");
  expect_error(client->request({{"type", "login"}, {"email", "x@y"}}), "bad_request");
  // A name is shown to others: no control or bidirectional formatting
  // characters, and not only spaces.
  for (const std::string name : {"tab\there", "rtl\xe2\x80\xae", "pop\xe2\x81\xa9", "  "}) {
    expect_error(client->request(
                     {{"type", "register"}, {"name", name}, {"email", "n@y"}, {"password", "p"}}),
                 "bad_request");
  }
  expect_ok(client->request({{"type", "register"},
                             {"name", "Zo\xc3\xab \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"},
                             {"email", "n@y"},
                             {"password", "p"}}));
}

TEST_F(AccountsTest, UserGetAndFind) {
  auto [alice, client] = online_user("alice");
  auto other = connect();
  User bob = register_user(*other, "bob");
  auto got = client->request({{"type", "user.get"}, {"user_id", bob.id}});
  expect_ok(got);
  EXPECT_EQ(got.at("user_id").as_string(), bob.id);
  EXPECT_EQ(got.at("name").as_string(), "bob");
  auto found = client->request({{"type", "user.find"}, {"email", bob.email}});
  expect_ok(found);
  EXPECT_EQ(found.at("user_id").as_string(), bob.id);
  expect_error(client->request({{"type", "user.get"}, {"user_id", "999999"}}), "not_found");
  expect_error(client->request({{"type", "user.get"}, {"user_id", "abc"}}), "not_found");
  expect_error(client->request({{"type", "user.find"}, {"email", "ghost@example.com"}}),
               "not_found");
}

TEST_F(AccountsTest, PasswordsAndTokensAreNotStoredInTheClear) {
  auto [alice, client] = online_user("alice");
  pqxx::connection conn(database_url_);
  pqxx::read_transaction tx(conn);
  const auto hash =
      tx.exec1("SELECT password_hash FROM users WHERE id = " + alice.id)[0].as<std::string>();
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_EQ(hash.find(alice.password), std::string::npos);
  const auto stored = tx.exec1("SELECT encode(token_hash, 'escape') FROM session_tokens LIMIT 1")[0]
                          .as<std::string>();
  EXPECT_EQ(stored.find(alice.token), std::string::npos);
  EXPECT_EQ(server_->log().find(alice.password), std::string::npos);
}

class TokenCapTest : public SessionTest {
 protected:
  std::string session_config() const override { return "      max_tokens_per_user: 2\n"; }
};

TEST_F(TokenCapTest, APasswordLoginPastTheCapRevokesTheOldestToken) {
  auto [alice, phone] = online_user("alice");
  const std::string oldest = alice.token;
  auto laptop = connect();
  login(*laptop, alice);
  const std::string middle = alice.token;
  auto tablet = connect();
  login(*tablet, alice);  // the third: the phone's token goes
  auto ended = phone->next_event("session_ended", 10s);
  ASSERT_TRUE(ended) << "the revoked token's connection stayed logged in";
  EXPECT_EQ(ended->at("reason").as_string(), "revoked");
  expect_error(phone->request({{"type", "conversations"}}), "unauthenticated");
  auto other = connect();
  expect_error(other->request({{"type", "login"}, {"token", oldest}}), "unauthenticated");
  expect_ok(other->request({{"type", "login"}, {"token", middle}}));
  expect_ok(laptop->request({{"type", "conversations"}}));
  expect_ok(tablet->request({{"type", "conversations"}}));
  pqxx::connection conn(database_url_);
  pqxx::read_transaction tx(conn);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM session_tokens WHERE revoked_at IS NULL AND user_id = " +
                     alice.id)[0]
                .as<int>(),
            2);
}

class ShortTokenTest : public SessionTest {
 protected:
  std::string session_config() const override { return "      token_ttl_seconds: 1\n"; }
};

TEST_F(ShortTokenTest, ConnectionsOfAnExpiredTokenEndAndAreTold) {
  auto [alice, phone] = online_user("alice");
  auto ended = phone->next_event("session_ended", 10s);
  ASSERT_TRUE(ended) << "the connection outlived its token";
  EXPECT_EQ(ended->at("reason").as_string(), "expired");
  expect_error(phone->request({{"type", "conversations"}}), "unauthenticated");
}

TEST_F(ShortTokenTest, ExpiredTokenIsUnauthenticated) {
  auto [alice, client] = online_user("alice");
  std::this_thread::sleep_for(1500ms);
  auto other = connect();
  expect_error(other->request({{"type", "login"}, {"token", alice.token}}), "unauthenticated");
}

}  // namespace
}  // namespace parley::test
