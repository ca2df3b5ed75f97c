// What a hostile client cannot do to accounts: smuggle control characters
// into account fields, register or guess passwords without limit, or stall
// other users' chat with password hashing.
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

}  // namespace
}  // namespace parley::test
