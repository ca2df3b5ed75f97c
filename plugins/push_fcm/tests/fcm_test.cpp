// push_fcm end to end: real parleyd (session + push_fcm), real PostgreSQL,
// real WebSocket clients, and the FCM fake (fake_fcm.py) over TLS on
// loopback.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "push_test_support.hpp"

namespace parley::test {
namespace {

constexpr char kProject[] = "parley-test";
constexpr char kClientEmail[] = "parley-push@parley-test.iam.gserviceaccount.com";

class FcmTest : public PushTest {
 protected:
  virtual int token_ttl_seconds() const { return 3600; }
  virtual std::string fcm_extra_config() const { return ""; }
  virtual std::vector<std::string> fake_extra_args() const { return {}; }

  void start_fakes() override {
    std::vector<std::string> args{"--cert",         keys_.cert.string(),
                                  "--key",          keys_.cert_key.string(),
                                  "--public-key",   keys_.rsa_public.string(),
                                  "--project",      kProject,
                                  "--client-email", kClientEmail,
                                  "--token-ttl",    std::to_string(token_ttl_seconds())};
    for (auto& arg : fake_extra_args()) args.push_back(std::move(arg));
    fcm_ = std::make_unique<FakeService>(FAKE_FCM_SCRIPT, args);
    json::object account{{"type", "service_account"},
                         {"project_id", kProject},
                         {"private_key_id", "0123456789abcdef"},
                         {"private_key", read_file(keys_.rsa_key)},
                         {"client_email", kClientEmail},
                         {"token_uri", fcm_->base_url() + "/token"}};
    account_file_ = keys_.dir.write("service-account.json", json::serialize(account));
  }

  std::string push_plugins_yaml() override {
    return "  - name: push_fcm\n    config:\n      service_account_file: " +
           account_file_.string() + "\n      endpoint: " + fcm_->base_url() +
           "\n      ca_file: " + keys_.cert.string() +
           "\n      backoff_base_ms: 10\n      backoff_max_ms: 50\n      quota_backoff_min_ms: "
           "1000\n" +
           fcm_extra_config();
  }

  // The send events the fake recorded for message `message_id`, waiting for
  // `count` of them.
  std::vector<json::object> sends_of(const std::string& message_id, std::size_t count) {
    return fcm_->wait_for(
        [&](const json::object& e) {
          if (e.at("event").as_string() != "send" || !e.contains("message")) return false;
          return e.at("message").at("data").at("message_id").as_string() == message_id;
        },
        count);
  }

  std::unique_ptr<FakeService> fcm_;
  std::filesystem::path account_file_;
};

TEST_F(FcmTest, AnOfflineRecipientGetsOnePushPerDeviceWithTitleBodyBadgeAndTagButNoCollapseKey) {
  User bob = offline_user_with_devices("Bob", {{"fcm", "phone-1"}, {"fcm", "tablet-1"}});
  auto [alice, alice_client] = online_user("Alice");

  auto first = send(*alice_client, bob, "Hi Bob", "c1");
  expect_ok(first);
  const std::string first_id(first.at("message_id").as_string());
  auto pushes = sends_of(first_id, 2);
  ASSERT_EQ(pushes.size(), 2u);
  std::set<std::string> tokens;
  for (const auto& push : pushes) {
    EXPECT_EQ(push.at("status").as_int64(), 200);
    EXPECT_EQ(push.at("content_type").as_string(), "application/json; charset=UTF-8");
    const auto& message = push.at("message").as_object();
    tokens.insert(std::string(message.at("token").as_string()));
    EXPECT_EQ(message.at("notification").at("title").as_string(), "Alice");
    EXPECT_EQ(message.at("notification").at("body").as_string(), "Hi Bob");
    EXPECT_EQ(message.at("data").at("conversation").as_string(), conversation_of(alice, bob));
    EXPECT_EQ(message.at("data").at("badge").as_string(), "1");
    // Chat messages are non-collapsible (FCM keeps four collapse keys per
    // device at most); the tag groups them on the phone instead.
    EXPECT_FALSE(message.at("android").as_object().contains("collapse_key"));
    EXPECT_EQ(message.at("android").at("notification").at("tag").as_string(),
              conversation_of(alice, bob));
    EXPECT_EQ(message.at("android").at("priority").as_string(), "high");
    EXPECT_EQ(message.at("android").at("notification").at("notification_count").as_int64(), 1);
  }
  EXPECT_EQ(tokens, (std::set<std::string>{"phone-1", "tablet-1"}));

  // The badge counts every unread message from others.
  auto second = send(*alice_client, bob, "Are you there?", "c2");
  expect_ok(second);
  pushes = sends_of(std::string(second.at("message_id").as_string()), 2);
  ASSERT_EQ(pushes.size(), 2u);
  for (const auto& push : pushes) {
    EXPECT_EQ(push.at("message").at("data").at("badge").as_string(), "2");
    EXPECT_EQ(push.at("message").at("notification").at("body").as_string(), "Are you there?");
  }
  // One access token served all four sends.
  EXPECT_EQ(fcm_->wait_for(event_for("token"), 1).size(), 1u);
  EXPECT_EQ(await_metric("parley_push_fcm_sent_total", 4), 4);
}

TEST_F(FcmTest, ABodyOfControlCharactersIsShortenedToFitTheFourKilobyteLimit) {
  // Each becomes \u0001 in JSON: 1000 of them would make a 6 KB message.
  User bob = offline_user_with_devices("Bob", {{"fcm", "phone-1"}});
  auto [alice, alice_client] = online_user("Alice");
  auto sent = send(*alice_client, bob, std::string(1000, '\x01'), "c1");
  expect_ok(sent);
  const auto pushes = sends_of(std::string(sent.at("message_id").as_string()), 1);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].at("status").as_int64(), 200) << json::serialize(pushes[0]);
  const std::string body(pushes[0].at("message").at("notification").at("body").as_string());
  ASSERT_GT(body.size(), 3u);
  EXPECT_LT(body.size(), 1000u);
  EXPECT_EQ(body.substr(body.size() - 3), "\xE2\x80\xA6");
  EXPECT_EQ(body.substr(0, body.size() - 3), std::string(body.size() - 3, '\x01'));
}

TEST_F(FcmTest, AnOnlineRecipientGetsNoPush) {
  auto [alice, alice_client] = online_user("Alice");
  auto bob_client = connect();
  User bob = register_user(*bob_client, "Bob");
  login(*bob_client, bob);
  expect_ok(register_device(*bob_client, "fcm", "phone-1"));

  auto while_online = send(*alice_client, bob, "You are here", "c1");
  expect_ok(while_online);
  ASSERT_TRUE(bob_client->next_event("message").has_value());
  expect_ok(bob_client->request({{"type", "logout"}}));
  auto while_offline = send(*alice_client, bob, "You left", "c2");
  expect_ok(while_offline);

  ASSERT_EQ(sends_of(std::string(while_offline.at("message_id").as_string()), 1).size(), 1u);
  // Offers are not ordered between messages: give a wrong push for the
  // first message time to show up too.
  fcm_->drain(std::chrono::milliseconds(300));
  ASSERT_EQ(fcm_->count(event_for("send")), 1u);
  EXPECT_EQ(fcm_->wait_for(event_for("send"), 1)[0]
                .at("message")
                .at("notification")
                .at("body")
                .as_string(),
            "You left");
}

TEST_F(FcmTest, DeadTokensAreRemovedAndNeverUsedAgain) {
  User bob = offline_user_with_devices("Bob", {{"fcm", "unregistered-1"},
                                               {"fcm", "invalid-1"},
                                               {"fcm", "malformed-1"},
                                               {"fcm", "badarg-1"},
                                               {"fcm", "notfound-1"},
                                               {"fcm", "good-1"}});
  auto [alice, alice_client] = online_user("Alice");

  auto first = send(*alice_client, bob, "one", "c1");
  expect_ok(first);
  ASSERT_EQ(sends_of(std::string(first.at("message_id").as_string()), 6).size(), 6u);
  // UNREGISTERED and an INVALID_ARGUMENT on message.token remove the token;
  // an INVALID_ARGUMENT about another field is our bug, not the device's,
  // and a 404 without FCM's verdict may be a wrong endpoint.
  ASSERT_TRUE(await_devices(bob, {{"fcm", "badarg-1"}, {"fcm", "good-1"}, {"fcm", "notfound-1"}}));

  auto second = send(*alice_client, bob, "two", "c2");
  expect_ok(second);
  const auto pushes = sends_of(std::string(second.at("message_id").as_string()), 3);
  ASSERT_EQ(pushes.size(), 3u);
  std::set<std::string> tokens;
  for (const auto& push : pushes) tokens.insert(std::string(push.at("token").as_string()));
  EXPECT_EQ(tokens, (std::set<std::string>{"badarg-1", "good-1", "notfound-1"}));
  fcm_->drain(std::chrono::milliseconds(300));
  EXPECT_EQ(fcm_->count(event_for("send")), 9u);

  EXPECT_EQ(await_metric("parley_push_fcm_tokens_invalid_total{reason=\"unregistered\"}", 1), 1);
  EXPECT_EQ(await_metric("parley_push_fcm_tokens_invalid_total{reason=\"invalid_token\"}", 2), 2);
  EXPECT_EQ(await_metric("parley_push_fcm_failures_total{reason=\"invalid_argument\"}", 2), 2);
  EXPECT_EQ(await_metric("parley_push_fcm_failures_total{reason=\"http_404\"}", 2), 2);
  EXPECT_EQ(await_metric("parley_session_devices_invalid_removed_total", 3), 3);
}

TEST_F(FcmTest, QuotaExceededIsRetriedNoSoonerThanRetryAfter) {
  User bob = offline_user_with_devices("Bob", {{"fcm", "quota-1"}});
  auto [alice, alice_client] = online_user("Alice");
  auto sent = send(*alice_client, bob, "later", "c1");
  expect_ok(sent);
  const auto pushes = fcm_->wait_for(event_for("send", "quota-1"), 2);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].at("status").as_int64(), 429);
  // The fake answers a retry that came before Retry-After with 429 "early";
  // the backoff alone (10 ms) would have come early.
  EXPECT_EQ(pushes[1].at("status").as_int64(), 200) << json::serialize(pushes[1]);
  EXPECT_FALSE(pushes[1].at("early").as_bool());
  EXPECT_EQ(await_metric("parley_push_fcm_retries_total", 1), 1);
  EXPECT_EQ(await_metric("parley_push_fcm_retryable_errors_total{reason=\"quota_exceeded\"}", 1),
            1);
}

TEST_F(FcmTest, QuotaExceededWithoutRetryAfterWaitsTheDocumentedMinimum) {
  // quota_backoff_min_ms is 1000 here (60000 by default); the backoff alone
  // (10 ms, at most 50) would retry inside the same quota period.
  User bob = offline_user_with_devices("Bob", {{"fcm", "quotabare-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "later", "c1"));
  const auto pushes = fcm_->wait_for(event_for("send", "quotabare-1"), 2);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].at("status").as_int64(), 429);
  EXPECT_EQ(pushes[1].at("status").as_int64(), 200) << json::serialize(pushes[1]);
  EXPECT_FALSE(pushes[1].at("early").as_bool());
  EXPECT_EQ(await_metric("parley_push_fcm_sent_total", 1), 1);
  EXPECT_EQ(metric("parley_push_fcm_retries_total"), 1);
}

TEST_F(FcmTest, AnOutageLongerThanFiveAttemptsIsRiddenOut) {
  // Eight 503s in a row: more than the five attempts that used to end a
  // push; the retry window (five minutes by default) decides instead.
  User bob = offline_user_with_devices("Bob", {{"fcm", "outage8-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "through the outage", "c1"));
  const auto pushes = fcm_->wait_for(event_for("send", "outage8-1"), 9);
  ASSERT_EQ(pushes.size(), 9u);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(pushes[i].at("status").as_int64(), 503);
  EXPECT_EQ(pushes[8].at("status").as_int64(), 200);
  EXPECT_EQ(await_metric("parley_push_fcm_sent_total", 1), 1);
  EXPECT_EQ(metric("parley_push_fcm_retries_total"), 8);
  EXPECT_EQ(metric("parley_push_fcm_failures_total{reason=\"retries_exhausted\"}"), 0);
}

TEST_F(FcmTest, UnavailableIsRetriedWithBackoffThenSent) {
  User bob = offline_user_with_devices("Bob", {{"fcm", "unavailable-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "soon", "c1"));
  const auto pushes = fcm_->wait_for(event_for("send", "unavailable-1"), 2);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].at("status").as_int64(), 503);
  EXPECT_EQ(pushes[1].at("status").as_int64(), 200);
  EXPECT_EQ(await_metric("parley_push_fcm_sent_total", 1), 1);
}

TEST_F(FcmTest, ARevokedAccessTokenIsReplacedAndTheSendRepeated) {
  User bob = offline_user_with_devices("Bob", {{"fcm", "revoke-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "again", "c1"));
  const auto pushes = fcm_->wait_for(event_for("send", "revoke-1"), 2);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].at("status").as_int64(), 401);
  EXPECT_EQ(pushes[1].at("status").as_int64(), 200);
  EXPECT_NE(pushes[0].at("access_token"), pushes[1].at("access_token"));
  const auto tokens = fcm_->wait_for(event_for("token"), 2);
  ASSERT_EQ(tokens.size(), 2u);
  for (const auto& t : tokens) EXPECT_TRUE(t.at("ok").as_bool()) << json::serialize(t);
}

TEST_F(FcmTest, AThirdPartyAuthErrorFailsThePushAndKeepsTheAccessToken) {
  User bob = offline_user_with_devices(
      "Bob", {{"fcm", "thirdparty-1"}, {"fcm", "thirdparty-2"}, {"fcm", "good-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "to an iPhone through FCM", "c1"));
  EXPECT_EQ(await_metric("parley_push_fcm_failures_total{reason=\"third_party_auth_error\"}", 2),
            2);
  EXPECT_EQ(await_metric("parley_push_fcm_sent_total", 1), 1);
  fcm_->drain(std::chrono::milliseconds(300));
  // Each failing push went once, and the one access token served all three.
  EXPECT_EQ(fcm_->count(event_for("send", "thirdparty-1")), 1u);
  EXPECT_EQ(fcm_->count(event_for("send", "thirdparty-2")), 1u);
  EXPECT_EQ(fcm_->count(event_for("token")), 1u);
  EXPECT_EQ(metric("parley_push_fcm_retries_total"), 0);
  EXPECT_EQ(metric("parley_push_fcm_retryable_errors_total{reason=\"unauthenticated\"}"), 0);
  // The devices are fine; the project's credentials are not.
  EXPECT_EQ(devices_of(bob).size(), 3u);
  // One line explains it, not one per push.
  const std::string log = server_->log();
  const std::string explanation = "FCM answers THIRD_PARTY_AUTH_ERROR";
  const auto first = log.find(explanation);
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find(explanation, first + 1), std::string::npos) << log;
}

class FcmShortTokenTest : public FcmTest {
 protected:
  // Renewal is due halfway through a token's life: one second here.
  int token_ttl_seconds() const override { return 2; }
};

TEST_F(FcmShortTokenTest, AnAccessTokenIsRenewedBeforeItExpires) {
  User bob = offline_user_with_devices("Bob", {{"fcm", "phone-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "one", "c1"));
  ASSERT_EQ(fcm_->wait_for(event_for("send", "phone-1"), 1).size(), 1u);
  // Past the renewal point but not the expiry: the next send must come with
  // a new token, and never be refused.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  expect_ok(send(*alice_client, bob, "two", "c2"));
  const auto pushes = fcm_->wait_for(event_for("send", "phone-1"), 2);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[1].at("status").as_int64(), 200);
  EXPECT_NE(pushes[0].at("access_token"), pushes[1].at("access_token"));
  EXPECT_EQ(fcm_->wait_for(event_for("token"), 2).size(), 2u);
}

class FcmShortRetryWindowTest : public FcmTest {
 protected:
  std::string fcm_extra_config() const override { return "      retry_window_ms: 300\n"; }
};

TEST_F(FcmShortRetryWindowTest, APushIsGivenUpWhenItsRetryWindowEnds) {
  User bob = offline_user_with_devices("Bob", {{"fcm", "outage100000-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "never", "c1"));
  EXPECT_EQ(await_metric("parley_push_fcm_failures_total{reason=\"retries_exhausted\"}", 1), 1);
  EXPECT_GE(fcm_->wait_for(event_for("send", "outage100000-1"), 2).size(), 2u);
  EXPECT_EQ(metric("parley_push_fcm_sent_total"), 0);
  EXPECT_EQ(await_metric("parley_push_fcm_queue_pending", 0), 0);
}

class FcmUnusableTokenAnswerTest : public FcmTest {
 protected:
  std::vector<std::string> fake_extra_args() const override {
    return {"--tokens-without-expiry", "1"};
  }
};

TEST_F(FcmUnusableTokenAnswerTest, AnAccessTokenNeverReachesTheLog) {
  User bob = offline_user_with_devices("Bob", {{"fcm", "phone-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "one", "c1"));
  // The first answer holds a token but no expires_in: refused, retried.
  const auto pushes = fcm_->wait_for(event_for("send", "phone-1"), 1);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].at("status").as_int64(), 200);
  const auto tokens = fcm_->wait_for(event_for("token"), 2);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_FALSE(tokens[0].at("ok").as_bool());
  EXPECT_EQ(await_metric("parley_push_fcm_access_token_failures_total", 1), 1);
  const std::string log = server_->log();
  EXPECT_NE(log.find("FCM access token request failed: HTTP 200 without a usable access_token"),
            std::string::npos)
      << log;
  for (const auto& t : tokens) {
    const std::string secret(t.at("access_token").as_string());
    EXPECT_EQ(log.find(secret), std::string::npos) << "the log shows " << secret;
  }
  EXPECT_EQ(log.find("ya29."), std::string::npos) << log;
}

class FcmDevicesTest : public FcmTest {
 protected:
  std::string session_config() const override {
    return "      push:\n        platforms: [fcm, apns, webpush]\n        max_devices_per_user: 2\n"
           "        max_token_bytes: 64\n";
  }
};

TEST_F(FcmDevicesTest, RegisterChecksPlatformAndToken) {
  auto [alice, client] = online_user("Alice");
  expect_error(register_device(*client, "carrier-pigeon", "t1"), "bad_request");
  // Known platforms whose plugin is not running here.
  expect_error(register_device(*client, "apns", "t1"), "unsupported");
  expect_error(register_device(*client, "webpush", "t1"), "unsupported");
  expect_error(register_device(*client, "fcm", ""), "bad_request");
  expect_error(register_device(*client, "fcm", "tab\there"), "bad_request");
  expect_error(register_device(*client, "fcm", std::string(65, 'x')), "too_large");
  expect_error(client->request({{"type", "device.register"}, {"platform", "fcm"}, {"token", 7}}),
               "bad_request");
  EXPECT_TRUE(devices_of(alice).empty());
  expect_ok(register_device(*client, "fcm", std::string(64, 'x')));
  EXPECT_EQ(devices_of(alice).size(), 1u);
}

TEST_F(FcmDevicesTest, ATokenMovesToWhoeverRegistersItLast) {
  auto [alice, alice_client] = online_user("Alice");
  auto [bob, bob_client] = online_user("Bob");
  expect_ok(register_device(*alice_client, "fcm", "shared-phone"));
  expect_ok(register_device(*bob_client, "fcm", "shared-phone"));
  EXPECT_TRUE(devices_of(alice).empty());
  EXPECT_EQ(devices_of(bob),
            (std::vector<std::pair<std::string, std::string>>{{"fcm", "shared-phone"}}));

  // Unregistering a token of someone else, or an unknown one, changes nothing.
  expect_ok(alice_client->request({{"type", "device.unregister"}, {"token", "shared-phone"}}));
  expect_ok(alice_client->request({{"type", "device.unregister"}, {"token", "never-seen"}}));
  EXPECT_EQ(devices_of(bob).size(), 1u);
  expect_ok(bob_client->request({{"type", "device.unregister"}, {"token", "shared-phone"}}));
  EXPECT_TRUE(devices_of(bob).empty());
}

TEST_F(FcmDevicesTest, RegisteringBeyondTheLimitEvictsTheOldest) {
  auto [alice, client] = online_user("Alice");
  expect_ok(register_device(*client, "fcm", "first"));
  expect_ok(register_device(*client, "fcm", "second"));
  // Registering "first" again makes it the newest.
  expect_ok(register_device(*client, "fcm", "first"));
  expect_ok(register_device(*client, "fcm", "third"));
  EXPECT_EQ(devices_of(alice),
            (std::vector<std::pair<std::string, std::string>>{{"fcm", "first"}, {"fcm", "third"}}));
  EXPECT_EQ(await_metric("parley_session_devices_evicted_total", 1), 1);
}

}  // namespace
}  // namespace parley::test

namespace parley::test {
namespace {

TEST(FcmCheckConfig, NamesAMissingOrBrokenServiceAccountFile) {
  TestKeys keys;
  auto [status, output] = check_config(
      "  - name: push_fcm\n    config:\n      service_account_file: /nonexistent/sa.json\n");
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find("plugins[0].config.service_account_file: cannot read /nonexistent/sa.json"),
            std::string::npos)
      << output;

  const auto no_key = keys.dir.write(
      "sa.json", R"({"type": "service_account", "project_id": "p", "client_email": "e@x",
                    "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"})");
  std::tie(status, output) = check_config(
      "  - name: push_fcm\n    config:\n      service_account_file: " + no_key.string() + "\n");
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find(no_key.string() + ": \"private_key\" is not a PEM private key"),
            std::string::npos)
      << output;

  json::object good{{"type", "service_account"},
                    {"project_id", "p"},
                    {"client_email", "e@x"},
                    {"private_key", read_file(keys.rsa_key)}};
  const auto good_file = keys.dir.write("good.json", json::serialize(good));
  std::tie(status, output) = check_config(
      "  - name: push_fcm\n    config:\n      service_account_file: " + good_file.string() + "\n");
  EXPECT_EQ(status, 0) << output;
}

}  // namespace
}  // namespace parley::test
