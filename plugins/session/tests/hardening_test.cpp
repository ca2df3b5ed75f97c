// What a hostile client cannot do to accounts: smuggle control characters
// into account fields, register or guess passwords without limit, or stall
// other users' chat with password hashing.
#include <pqxx/pqxx>

#include "session_fixture.hpp"

namespace parley::test {
namespace {

class AccountFieldsTest : public SessionTest {};

TEST_F(AccountFieldsTest, NulAndControlCharactersAreBadRequest) {
  auto client = connect();
  User alice = register_user(*client, "alice");
  expect_error(client->request({{"type", "register"},
                                {"name", std::string("a\0b", 3)},
                                {"email", "nul@example.com"},
                                {"password", "pw"}}),
               "bad_request");
  expect_error(client->request({{"type", "register"},
                                {"name", "bell\x07"},
                                {"email", "bell@example.com"},
                                {"password", "pw"}}),
               "bad_request");
  expect_error(client->request({{"type", "register"},
                                {"name", "n"},
                                {"email", std::string("x@example.com\0", 14)},
                                {"password", "pw"}}),
               "bad_request");
  expect_error(client->request({{"type", "login"},
                                {"email", alice.email + std::string("\0garbage", 8)},
                                {"password", alice.password}}),
               "bad_request");
  login(*client, alice);
  expect_error(
      client->request({{"type", "user.find"}, {"email", alice.email + std::string("\0", 1)}}),
      "bad_request");
}

class AccountLimitsTest : public SessionTest {
 protected:
  std::string session_config() const override {
    return "      limits:\n        registrations_per_address_per_hour: 3\n"
           "        failed_logins_per_address_per_15min: 50\n"
           "        failed_logins_per_account_and_address_per_15min: 3\n";
  }
};

TEST_F(AccountLimitsTest, RegistrationsPerAddressAreCapped) {
  auto client = connect();
  for (int i = 0; i < 3; ++i) register_user(*client, "user" + std::to_string(i));
  expect_error(client->request({{"type", "register"},
                                {"name", "one more"},
                                {"email", "more@example.com"},
                                {"password", "pw"}}),
               "rate_limited");
}

TEST_F(AccountLimitsTest,
       FailedLoginsAreCappedPerAccountAndAddressButTheRightPasswordStillWorksElsewhere) {
  auto client = connect();
  User alice = register_user(*client, "alice");
  for (int i = 0; i < 3; ++i) {
    expect_error(
        client->request({{"type", "login"}, {"email", alice.email}, {"password", "wrong"}}),
        "unauthenticated");
  }
  // The pair (alice, this address) is now capped, even with the right password.
  expect_error(
      client->request({{"type", "login"}, {"email", alice.email}, {"password", alice.password}}),
      "rate_limited");
  // Other accounts from the same address are not affected.
  User bob = register_user(*client, "bob");
  auto other = connect();
  login(*other, bob);
}

// Clients at addresses of their choosing (the server trusts 127.0.0.1 as a
// proxy), over a database whose lower() folds non-ASCII letters, as a
// UTF-8 locale's does.
class GuessingTest : public SessionTest {
 protected:
  std::string session_config() const override {
    return "      limits:\n        failed_logins_per_address_per_15min: 50\n"
           "        failed_logins_per_account_and_address_per_15min: 3\n"
           "        failed_logins_per_account_per_hour: 5\n"
           "        registrations_per_address_per_hour: 3\n";
  }

  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    {
      pqxx::connection conn(TestPostgres::shared().url());
      pqxx::nontransaction tx(conn);
      const auto name = conn.quote_name(pqxx::connection(database_url_).dbname());
      tx.exec("DROP DATABASE " + name);
      tx.exec("CREATE DATABASE " + name + " TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'");
    }
    auto options = server_options();
    options.server_yaml = "  trusted_proxies: [127.0.0.1]\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }

  std::unique_ptr<WsClient> connect_from(const std::string& address) {
    return std::make_unique<WsClient>(server_->port(),
                                      WsClient::Options{.headers = {{"X-Forwarded-For", address}}});
  }

  static json::object password_login(WsClient& client, const std::string& email,
                                     const std::string& password) {
    return client.request({{"type", "login"}, {"email", email}, {"password", password}});
  }

  // Five strangers at five addresses, one wrong guess each at `email`: the
  // account's hourly five (failed_logins_per_account_per_hour above).
  void use_up_the_accounts_hour(const std::string& email) {
    for (int i = 0; i < 5; ++i) {
      auto guesser = connect_from("203.0.113." + std::to_string(10 + i));
      expect_error(password_login(*guesser, email, "wrong"), "unauthenticated");
    }
  }
};

TEST_F(GuessingTest, AnAccountIsCountedByItsIdWhateverTheCaseOfItsEmail) {
  auto client = connect_from("198.51.100.1");
  auto reply = client->request({{"type", "register"},
                                {"name", "Emile"},
                                {"email", "\xc3\xa9mile@example.com"},
                                {"password", "right"}});
  expect_ok(reply);
  // The database matches the account whatever the case of its é.
  for (const char* email :
       {"\xc3\x89MILE@example.com", "\xc3\xa9MILE@example.com", "\xc3\x89mile@EXAMPLE.com"}) {
    expect_error(password_login(*client, email, "wrong"), "unauthenticated");
  }
  expect_error(password_login(*client, "\xc3\xa9mile@example.com", "wrong"), "rate_limited");
  expect_error(password_login(*client, "\xc3\x89MILE@EXAMPLE.COM", "right"), "rate_limited");
}

TEST_F(GuessingTest, FailedLoginsOfOneAccountAreCappedAcrossAddresses) {
  auto owner = connect_from("198.51.100.1");
  User alice = register_user(*owner, "alice");
  login(*owner, alice);
  use_up_the_accounts_hour(alice.email);
  auto elsewhere = connect_from("192.0.2.77");
  expect_error(password_login(*elsewhere, alice.email, "wrong"), "rate_limited");
  // The right password too, from an address that never guessed: the
  // trade-off that caps guessing at five an hour.
  expect_error(password_login(*elsewhere, alice.email, alice.password), "rate_limited");
  // The owner's devices that hold a token are not locked out.
  auto phone = connect_from("192.0.2.78");
  login_with_token(*phone, alice);
  expect_ok(owner->request({{"type", "conversations"}}));
  // Another account at the same addresses is not affected.
  User bob = register_user(*elsewhere, "bob");
  login(*elsewhere, bob);
}

TEST_F(GuessingTest, WhereTheAccountLoggedInBeforeThePasswordStillWorks) {
  auto home = connect_from("198.51.100.1");
  User alice = register_user(*home, "alice");
  login(*home, alice);
  use_up_the_accounts_hour(alice.email);
  auto elsewhere = connect_from("192.0.2.77");
  expect_error(password_login(*elsewhere, alice.email, alice.password), "rate_limited");
  // At home, a new connection (a new device, a lost token) logs in.
  auto laptop = connect_from("198.51.100.1");
  login(*laptop, alice);
  // A wrong password there is answered as past the limit, as anywhere else
  // (unauthenticated would tell that the address is known), and a guesser
  // there is held to the limit per account and address (three): then the
  // right password is refused too.
  auto neighbour = connect_from("198.51.100.1");
  for (int i = 0; i < 3; ++i) {
    expect_error(password_login(*neighbour, alice.email, "wrong"), "rate_limited");
  }
  expect_error(password_login(*neighbour, alice.email, alice.password), "rate_limited");
}

TEST_F(GuessingTest, AnAddressIsKnownForKnownLoginAddressDaysOnly) {
  auto home = connect_from("198.51.100.1");
  User alice = register_user(*home, "alice");
  login(*home, alice);
  {
    pqxx::connection conn(database_url_);
    pqxx::work tx(conn);
    tx.exec("UPDATE known_login_addresses SET last_login = now() - interval '91 days'");
    tx.commit();
  }
  use_up_the_accounts_hour(alice.email);
  auto laptop = connect_from("198.51.100.1");
  expect_error(password_login(*laptop, alice.email, alice.password), "rate_limited");
}

TEST_F(GuessingTest, AnIPv6NetworkTheAccountLoggedInFromIsKnownAsAWhole) {
  auto phone = connect_from("2001:db8:7:8::10");
  User alice = register_user(*phone, "alice");
  login(*phone, alice);
  use_up_the_accounts_hour(alice.email);
  // Another address of the phone's /64 (privacy addresses change).
  auto later = connect_from("2001:db8:7:8:abcd::99");
  login(*later, alice);
  auto other_network = connect_from("2001:db8:7:9::10");
  expect_error(password_login(*other_network, alice.email, alice.password), "rate_limited");
}

// known_login_address_days: 0 keeps the per-account limit for every address.
class GuessingWithoutKnownAddressesTest : public GuessingTest {
 protected:
  std::string session_config() const override {
    return GuessingTest::session_config() + "        known_login_address_days: 0\n";
  }
};

TEST_F(GuessingWithoutKnownAddressesTest, NoAddressIsExempt) {
  auto home = connect_from("198.51.100.1");
  User alice = register_user(*home, "alice");
  login(*home, alice);
  use_up_the_accounts_hour(alice.email);
  auto laptop = connect_from("198.51.100.1");
  expect_error(password_login(*laptop, alice.email, alice.password), "rate_limited");
}

TEST_F(GuessingTest, AnUnknownEmailIsCappedAsAnAccountWouldBe) {
  // The answers do not tell whether the email has an account.
  use_up_the_accounts_hour("Nobody@example.com");
  auto elsewhere = connect_from("192.0.2.77");
  expect_error(password_login(*elsewhere, "nobody@EXAMPLE.com", "wrong"), "rate_limited");
}

class PasswordLoginRateTest : public GuessingTest {
 protected:
  std::string session_config() const override {
    return "      limits:\n        password_logins_per_address_per_15min: 3\n";
  }
};

TEST_F(PasswordLoginRateTest, SuccessfulPasswordLoginsCountPerAddressButTokenLoginsDoNot) {
  auto client = connect_from("198.51.100.1");
  User alice = register_user(*client, "alice");
  for (int i = 0; i < 2; ++i) {
    login(*client, alice);
    expect_ok(client->request({{"type", "logout"}}));
  }
  login(*client, alice);  // the third; its token stays valid
  auto second = connect_from("198.51.100.1");
  expect_error(password_login(*second, alice.email, alice.password), "rate_limited");
  login_with_token(*second, alice);
  auto elsewhere = connect_from("198.51.100.2");
  login(*elsewhere, alice);
}

TEST_F(GuessingTest, AnIPv6NetworkCountsAsOneAddress) {
  // Three registrations an hour per address; every address of one /64 is
  // the same subscriber.
  for (const char* address : {"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"}) {
    auto client = connect_from(address);
    register_user(*client, "v6");
  }
  auto same_network = connect_from("2001:db8:1:2:abcd::1");
  expect_error(same_network->request({{"type", "register"},
                                      {"name", "one more"},
                                      {"email", "more@example.com"},
                                      {"password", "pw"}}),
               "rate_limited");
  auto next_network = connect_from("2001:db8:1:3::1");
  register_user(*next_network, "v6");
}

class UserFindLimitTest : public SessionTest {
 protected:
  std::string session_config() const override {
    return "      limits:\n        user_find_per_user_per_minute: 3\n";
  }
};

TEST_F(UserFindLimitTest, UserFindHasABudgetPerUser) {
  auto [alice, client] = online_user("alice");
  auto [bob, other] = online_user("bob");
  expect_ok(client->request({{"type", "user.find"}, {"email", bob.email}}));
  expect_error(client->request({{"type", "user.find"}, {"email", "ghost@example.com"}}),
               "not_found");
  expect_ok(client->request({{"type", "user.find"}, {"email", bob.email}}));
  expect_error(client->request({{"type", "user.find"}, {"email", bob.email}}), "rate_limited");
  // The budget is the user's, on every connection; user.get is not counted.
  auto second = connect();
  login_with_token(*second, alice);
  expect_error(second->request({{"type", "user.find"}, {"email", bob.email}}), "rate_limited");
  expect_ok(client->request({{"type", "user.get"}, {"user_id", bob.id}}));
  // Another user has their own.
  expect_ok(other->request({{"type", "user.find"}, {"email", alice.email}}));
}

class HashingLoadTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    auto options = server_options();
    // libsodium's interactive cost (64 MiB, 2 passes): tens of milliseconds
    // of CPU per hash, as in production.
    options.plugins_yaml =
        "  - name: session\n    config:\n      password_hashing:\n        ops_limit: 2\n"
        "        mem_limit_kib: 65536\n      limits:\n"
        "        registrations_per_address_per_hour: 100000\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }
};

TEST_F(HashingLoadTest, ChatIsAnsweredWhileRegistrationsAreBeingHashed) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto flood = connect();
  constexpr int kRegistrations = 60;
  for (int i = 0; i < kRegistrations; ++i) {
    flood->send({{"type", "register"},
                 {"id", "r" + std::to_string(i)},
                 {"name", "n"},
                 {"email", "flood" + std::to_string(i) + "@example.com"},
                 {"password", "a password"}});
  }
  expect_ok(send(*a, bob, "still here", "c1"));
  // When Alice had her answer, the last registration had not been answered.
  int answered = 0;
  bool last_answered = false;
  auto take = [&](std::chrono::milliseconds timeout) {
    auto frame = flood->receive(timeout);
    if (!frame) return false;
    if (!frame->contains("re")) return true;
    ++answered;
    if (frame->at("re").as_string() == "r" + std::to_string(kRegistrations - 1))
      last_answered = true;
    if (frame->at("type").as_string() == "error") {
      EXPECT_EQ(frame->at("code").as_string(), "unavailable") << json::serialize(*frame);
    }
    return true;
  };
  while (take(0ms)) {
  }
  EXPECT_FALSE(last_answered) << "the send waited behind " << answered << " registrations";
  while (answered < kRegistrations) ASSERT_TRUE(take(60s)) << answered << " answered";
  EXPECT_TRUE(last_answered);
}

// Guesses sent in parallel, each checked at real hashing cost: they are
// counted before their password is checked, so no more than the limit get
// a verdict.
class ParallelGuessingTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    auto options = server_options();
    options.plugins_yaml =
        "  - name: session\n    config:\n      password_hashing:\n        ops_limit: 2\n"
        "        mem_limit_kib: 65536\n      limits:\n"
        "        failed_logins_per_account_and_address_per_15min: 3\n"
        // Only the count limits here, not the hashes-at-once ones.
        "        password_hashes_at_once_per_address: 100\n"
        "        password_hashes_at_once_per_account: 100\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }
};

TEST_F(ParallelGuessingTest, GuessesInParallelFromOneAddressStopAtTheLimit) {
  auto owner = connect();
  User alice = register_user(*owner, "alice");
  constexpr int kGuesses = 12;
  std::vector<std::unique_ptr<WsClient>> guessers;
  for (int i = 0; i < kGuesses; ++i) guessers.push_back(connect());
  for (auto& guesser : guessers) {
    guesser->send({{"type", "login"}, {"id", "g"}, {"email", alice.email}, {"password", "wrong"}});
  }
  int verified = 0;
  int limited = 0;
  for (auto& guesser : guessers) {
    auto reply = guesser->receive(60s);
    ASSERT_TRUE(reply) << "a guess was not answered";
    ASSERT_EQ(reply->at("type").as_string(), "error") << json::serialize(*reply);
    const auto& code = reply->at("code").as_string();
    if (code == "unauthenticated") {
      ++verified;
    } else {
      EXPECT_EQ(code, "rate_limited") << json::serialize(*reply);
      ++limited;
    }
  }
  EXPECT_EQ(verified, 3);
  EXPECT_EQ(limited, kGuesses - 3);
}

// Logins sent at once, with the right password, at real hashing cost: one
// account (or one address) gets a few hashes at a time, not the whole
// queue. What is refused is rate_limited at once; the first slots are
// always granted.
class HashingFairnessTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    auto options = server_options();
    options.plugins_yaml =
        "  - name: session\n    config:\n      password_hashing:\n        ops_limit: 2\n"
        "        mem_limit_kib: 65536\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }

  // How many of the logins sent on `clients` succeeded, and how many were
  // refused rate_limited (any other answer fails the test).
  static std::pair<int, int> login_outcomes(std::vector<std::unique_ptr<WsClient>>& clients) {
    int logged_in = 0;
    int limited = 0;
    for (auto& client : clients) {
      auto reply = client->receive(60s);
      EXPECT_TRUE(reply) << "a login was not answered";
      if (!reply) continue;
      if (reply->at("type").as_string() == "ok") {
        ++logged_in;
        continue;
      }
      EXPECT_EQ(reply->at("code").as_string(), "rate_limited") << json::serialize(*reply);
      ++limited;
    }
    return {logged_in, limited};
  }
};

TEST_F(HashingFairnessTest, OneAccountGetsAFewPasswordChecksAtATime) {
  auto owner = connect();
  User alice = register_user(*owner, "alice");
  constexpr int kLogins = 10;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kLogins; ++i) clients.push_back(connect());
  for (auto& client : clients) {
    client->send(
        {{"type", "login"}, {"id", "l"}, {"email", alice.email}, {"password", alice.password}});
  }
  const auto [logged_in, limited] = login_outcomes(clients);
  EXPECT_GE(logged_in, 2);
  EXPECT_GE(limited, 1) << "every login of one account was hashed at once";
}

TEST_F(HashingFairnessTest, OneAddressGetsAFewPasswordChecksAtATime) {
  constexpr int kAccounts = 8;
  std::vector<User> users;
  auto registrar = connect();
  for (int i = 0; i < kAccounts; ++i) users.push_back(register_user(*registrar, "u"));
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kAccounts; ++i) clients.push_back(connect());
  for (int i = 0; i < kAccounts; ++i) {
    clients[i]->send({{"type", "login"},
                      {"id", "l"},
                      {"email", users[i].email},
                      {"password", users[i].password}});
  }
  const auto [logged_in, limited] = login_outcomes(clients);
  EXPECT_GE(logged_in, 4);
  EXPECT_GE(limited, 1) << "every login from one address was hashed at once";
}

}  // namespace
}  // namespace parley::test
