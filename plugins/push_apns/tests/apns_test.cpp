// push_apns end to end: real parleyd (session + push_apns), real PostgreSQL,
// real WebSocket clients, and the APNs fake (fake_apns.py, HTTP/2 over TLS)
// on loopback.
#include <gtest/gtest.h>

#include <set>

#include "push_test_support.hpp"

namespace parley::test {
namespace {

constexpr char kKeyId[] = "ABC123DEFG";
constexpr char kTeamId[] = "DEF123GHIJ";
constexpr char kTopic[] = "org.parley.app";

class ApnsTest : public PushTest {
 protected:
  virtual std::string apns_extra_config() const { return ""; }

  void start_fakes() override {
    apns_ = std::make_unique<FakeService>(
        FAKE_APNS_SCRIPT,
        std::vector<std::string>{"--cert", keys_.cert.string(), "--key", keys_.cert_key.string(),
                                 "--public-key", keys_.ec_public.string(), "--key-id", kKeyId,
                                 "--team-id", kTeamId, "--topic", kTopic});
  }

  std::string push_plugins_yaml() override {
    return "  - name: push_apns\n    config:\n      key_file: " + keys_.ec_key.string() +
           "\n      key_id: " + kKeyId + "\n      team_id: " + kTeamId +
           "\n      topic: " + kTopic +
           "\n      environment: sandbox\n      endpoint: " + apns_->base_url() +
           "\n      ca_file: " + keys_.cert.string() +
           "\n      backoff_base_ms: 10\n      backoff_max_ms: 50\n" + apns_extra_config();
  }

  std::vector<json::object> requests_of(const std::string& message_id, std::size_t count) {
    return apns_->wait_for(
        [&](const json::object& e) {
          if (e.at("event").as_string() != "request" || e.at("payload").is_null()) return false;
          return e.at("payload").at("message_id").as_string() == message_id;
        },
        count);
  }

  std::unique_ptr<FakeService> apns_;
};

TEST_F(ApnsTest, AnOfflineRecipientGetsAnAlertWithBadgeThreadAndCollapseId) {
  User bob = offline_user_with_devices("Bob", {{"apns", "a1b2c3"}, {"apns", "d4e5f6"}});
  auto [alice, alice_client] = online_user("Alice");
  auto sent = send(*alice_client, bob, "Hi Bob", "c1");
  expect_ok(sent);
  const auto requests = requests_of(std::string(sent.at("message_id").as_string()), 2);
  ASSERT_EQ(requests.size(), 2u);
  std::set<std::string> tokens;
  for (const auto& r : requests) {
    EXPECT_EQ(r.at("status").as_int64(), 200) << json::serialize(r);
    tokens.insert(std::string(r.at("token").as_string()));
    const auto& headers = r.at("headers").as_object();
    EXPECT_EQ(headers.at("apns-topic").as_string(), kTopic);
    EXPECT_EQ(headers.at("apns-push-type").as_string(), "alert");
    EXPECT_EQ(headers.at("apns-priority").as_string(), "10");
    EXPECT_EQ(headers.at("apns-collapse-id").as_string(), conversation_of(alice, bob));
    EXPECT_GT(std::stoll(std::string(headers.at("apns-expiration").as_string())), 0);
    const auto& aps = r.at("payload").at("aps").as_object();
    EXPECT_EQ(aps.at("alert").at("title").as_string(), "Alice");
    EXPECT_EQ(aps.at("alert").at("body").as_string(), "Hi Bob");
    EXPECT_EQ(aps.at("badge").as_int64(), 1);
    EXPECT_EQ(aps.at("thread-id").as_string(), conversation_of(alice, bob));
    EXPECT_EQ(aps.at("sound").as_string(), "default");
    EXPECT_EQ(r.at("payload").at("conversation").as_string(), conversation_of(alice, bob));
  }
  EXPECT_EQ(tokens, (std::set<std::string>{"a1b2c3", "d4e5f6"}));
}

TEST_F(ApnsTest, ABodyOfControlCharactersIsShortenedToFitTheFourKilobyteLimit) {
  // Each becomes \u0001 in JSON: 1000 of them would make a 6 KB payload.
  User bob = offline_user_with_devices("Bob", {{"apns", "a1b2c3"}});
  auto [alice, alice_client] = online_user("Alice");
  auto sent = send(*alice_client, bob, std::string(1000, '\x01'), "c1");
  expect_ok(sent);
  const auto requests = requests_of(std::string(sent.at("message_id").as_string()), 1);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].at("status").as_int64(), 200) << json::serialize(requests[0]);
  const std::string body(requests[0].at("payload").at("aps").at("alert").at("body").as_string());
  ASSERT_GT(body.size(), 3u);
  EXPECT_LT(body.size(), 1000u);
  EXPECT_EQ(body.substr(body.size() - 3), "\xE2\x80\xA6");
  EXPECT_EQ(body.substr(0, body.size() - 3), std::string(body.size() - 3, '\x01'));
  EXPECT_EQ(await_metric("parley_push_apns_sent_total", 1), 1);
}

// "bad-1" is no hex device token at all: it goes even before any push was
// accepted (ok-1 may be answered after it).
TEST_F(ApnsTest, BadAndUnregisteredTokensAreRemovedAndNeverUsedAgain) {
  User bob =
      offline_user_with_devices("Bob", {{"apns", "bad-1"}, {"apns", "gone-1"}, {"apns", "ok-1"}});
  auto [alice, alice_client] = online_user("Alice");
  auto first = send(*alice_client, bob, "one", "c1");
  expect_ok(first);
  ASSERT_EQ(requests_of(std::string(first.at("message_id").as_string()), 3).size(), 3u);
  ASSERT_TRUE(await_devices(bob, {{"apns", "ok-1"}}));

  auto second = send(*alice_client, bob, "two", "c2");
  expect_ok(second);
  const auto requests = requests_of(std::string(second.at("message_id").as_string()), 1);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].at("token").as_string(), "ok-1");
  apns_->drain(std::chrono::milliseconds(300));
  EXPECT_EQ(apns_->count(event_for("request")), 4u);
  EXPECT_EQ(await_metric("parley_push_apns_tokens_invalid_total{reason=\"bad_device_token\"}", 1),
            1);
  EXPECT_EQ(await_metric("parley_push_apns_tokens_invalid_total{reason=\"unregistered\"}", 1), 1);
}

TEST_F(ApnsTest, ABadDeviceTokenBeforeAnyAcceptedPushKeepsAWellFormedToken) {
  // As a wrong `environment` answers every token: nothing may be wiped.
  User bob = offline_user_with_devices("Bob", {{"apns", "bad0c0de"}, {"apns", "bad-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "one", "c1"));
  EXPECT_EQ(await_metric("parley_push_apns_failures_total{reason=\"bad_device_token\"}", 1), 1);
  EXPECT_EQ(await_metric("parley_push_apns_tokens_invalid_total{reason=\"bad_device_token\"}", 1),
            1);
  ASSERT_TRUE(await_devices(bob, {{"apns", "bad0c0de"}}));
  EXPECT_NE(server_->log().find("answers BadDeviceToken for well-formed device tokens"),
            std::string::npos)
      << server_->log();
}

TEST_F(ApnsTest, ABadDeviceTokenAfterAnAcceptedPushRemovesTheDevice) {
  User carol = offline_user_with_devices("Carol", {{"apns", "0123abcd"}});
  User bob = offline_user_with_devices("Bob", {{"apns", "bad0c0de"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, carol, "first", "c1"));
  ASSERT_EQ(await_metric("parley_push_apns_sent_total", 1), 1);
  expect_ok(send(*alice_client, bob, "second", "c2"));
  EXPECT_EQ(await_metric("parley_push_apns_tokens_invalid_total{reason=\"bad_device_token\"}", 1),
            1);
  ASSERT_TRUE(await_devices(bob, {}));
  EXPECT_EQ(metric("parley_push_apns_failures_total{reason=\"bad_device_token\"}"), 0);
}

TEST_F(ApnsTest, AnExpiredProviderTokenIsRenewedAndThePushRepeatedOnce) {
  User bob = offline_user_with_devices("Bob", {{"apns", "expire-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "one", "c1"));
  const auto requests = apns_->wait_for(event_for("request", "expire-1"), 2);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].at("status").as_int64(), 403);
  EXPECT_EQ(requests[0].at("reason").as_string(), "ExpiredProviderToken");
  EXPECT_EQ(requests[1].at("status").as_int64(), 200);
  EXPECT_NE(requests[0].at("jwt"), requests[1].at("jwt"));
  EXPECT_EQ(await_metric("parley_push_apns_provider_tokens_minted_total", 2), 2);
}

TEST_F(ApnsTest, AProviderTokenCalledExpiredRightAfterARenewalIsNotRenewedAgain) {
  // expire-2 arrives after expire-1 made the plugin renew: a token that
  // fresh being "expired" means a wrong clock, and Apple refuses renewals
  // more often than every 20 minutes.
  User bob = offline_user_with_devices("Bob", {{"apns", "expire-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "one", "c1"));
  ASSERT_EQ(apns_->wait_for(event_for("request", "expire-1"), 2).size(), 2u);
  auto client = connect();
  login(*client, bob);
  expect_ok(client->request({{"type", "device.unregister"}, {"token", "expire-1"}}));
  expect_ok(register_device(*client, "apns", "expire-2"));
  expect_ok(client->request({{"type", "logout"}}));
  expect_ok(send(*alice_client, bob, "two", "c2"));
  const auto requests = apns_->wait_for(event_for("request", "expire-2"), 1);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].at("reason").as_string(), "ExpiredProviderToken");
  EXPECT_EQ(await_metric("parley_push_apns_failures_total{reason=\"expired_provider_token\"}", 1),
            1);
  EXPECT_EQ(metric("parley_push_apns_provider_tokens_minted_total"), 2);
}

TEST_F(ApnsTest, TooManyRequestsIsRetried) {
  User bob = offline_user_with_devices("Bob", {{"apns", "busy-1"}});
  auto [alice, alice_client] = online_user("Alice");
  expect_ok(send(*alice_client, bob, "one", "c1"));
  const auto requests = apns_->wait_for(event_for("request", "busy-1"), 2);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].at("status").as_int64(), 429);
  EXPECT_EQ(requests[1].at("status").as_int64(), 200);
  EXPECT_EQ(await_metric("parley_push_apns_retries_total", 1), 1);
}

TEST_F(ApnsTest, OneProviderTokenServesManyPushesOnOneMultiplexedConnection) {
  // The fake holds each gather4 request until four are open at once on the
  // connection: only concurrent streams on one connection get answers.
  User bob = offline_user_with_devices(
      "Bob",
      {{"apns", "gather4-a"}, {"apns", "gather4-b"}, {"apns", "gather4-c"}, {"apns", "gather4-d"}});
  auto [alice, alice_client] = online_user("Alice");
  auto first = send(*alice_client, bob, "one", "c1");
  expect_ok(first);
  const auto gathered = requests_of(std::string(first.at("message_id").as_string()), 4);
  ASSERT_EQ(gathered.size(), 4u);
  for (const auto& r : gathered) {
    EXPECT_EQ(r.at("status").as_int64(), 200);
    EXPECT_EQ(r.at("gathered").as_int64(), 4);
  }
  auto second = send(*alice_client, bob, "two", "c2");
  expect_ok(second);
  ASSERT_EQ(requests_of(std::string(second.at("message_id").as_string()), 4).size(), 4u);

  std::set<std::string> jwts;
  std::set<std::int64_t> connections;
  for (const auto& e : apns_->events()) {
    if (e.at("event").as_string() != "request") continue;
    jwts.insert(std::string(e.at("jwt").as_string()));
    connections.insert(e.at("connection").as_int64());
  }
  EXPECT_EQ(jwts.size(), 1u);
  EXPECT_EQ(connections.size(), 1u);
  EXPECT_EQ(apns_->wait_for(event_for("connection"), 1).size(), 1u);
  EXPECT_EQ(await_metric("parley_push_apns_provider_tokens_minted_total", 1), 1);
}

// Both push plugins at once: each gets only its own platform's devices.
class BothPlatformsTest : public ApnsTest {
 protected:
  void start_fakes() override {
    ApnsTest::start_fakes();
    fcm_ = std::make_unique<FakeService>(
        FAKE_FCM_SCRIPT,
        std::vector<std::string>{"--cert", keys_.cert.string(), "--key", keys_.cert_key.string(),
                                 "--public-key", keys_.rsa_public.string(), "--project", "p1",
                                 "--client-email", "sa@p1.example"});
    json::object account{{"type", "service_account"},
                         {"project_id", "p1"},
                         {"private_key", read_file(keys_.rsa_key)},
                         {"client_email", "sa@p1.example"},
                         {"token_uri", fcm_->base_url() + "/token"}};
    account_file_ = keys_.dir.write("service-account.json", json::serialize(account));
  }
  std::string push_plugins_yaml() override {
    return ApnsTest::push_plugins_yaml() +
           "  - name: push_fcm\n    config:\n      service_account_file: " +
           account_file_.string() + "\n      endpoint: " + fcm_->base_url() +
           "\n      ca_file: " + keys_.cert.string() + "\n";
  }
  std::unique_ptr<FakeService> fcm_;
  std::filesystem::path account_file_;
};

TEST_F(BothPlatformsTest, EachDeviceGetsThePushThroughItsOwnPlatform) {
  User bob = offline_user_with_devices(
      "Bob", {{"apns", "iphone-1"}, {"fcm", "android-1"}, {"fcm", "android-2"}});
  auto [alice, alice_client] = online_user("Alice");
  auto sent = send(*alice_client, bob, "Hi both", "c1");
  expect_ok(sent);
  const std::string id(sent.at("message_id").as_string());
  const auto apns = requests_of(id, 1);
  ASSERT_EQ(apns.size(), 1u);
  EXPECT_EQ(apns[0].at("token").as_string(), "iphone-1");
  EXPECT_EQ(apns[0].at("payload").at("aps").at("alert").at("body").as_string(), "Hi both");
  const auto fcm = fcm_->wait_for(event_for("send"), 2);
  ASSERT_EQ(fcm.size(), 2u);
  std::set<std::string> tokens;
  for (const auto& e : fcm) {
    tokens.insert(std::string(e.at("token").as_string()));
    EXPECT_EQ(e.at("message").at("data").at("message_id").as_string(), id);
    EXPECT_EQ(e.at("message").at("notification").at("body").as_string(), "Hi both");
  }
  EXPECT_EQ(tokens, (std::set<std::string>{"android-1", "android-2"}));
  apns_->drain(std::chrono::milliseconds(200));
  EXPECT_EQ(apns_->count(event_for("request")), 1u);
}

class ApnsSmallQueueTest : public ApnsTest {
 protected:
  std::string apns_extra_config() const override {
    return "      queue_size: 2\n      request_timeout_ms: 600000\n";
  }
};

TEST_F(ApnsSmallQueueTest, AHangingServiceFillsTheQueueButNeverHoldsChatUp) {
  User bob = offline_user_with_devices("Bob", {{"apns", "hang-1"}});
  auto [alice, alice_client] = online_user("Alice");
  auto bob_again = connect();
  User carol = register_user(*bob_again, "Carol");
  login(*bob_again, carol);
  // Every push to Bob hangs; the queue holds two; chat goes on regardless.
  for (int i = 0; i < 5; ++i) {
    expect_ok(send(*alice_client, bob, "ping " + std::to_string(i), "c" + std::to_string(i)));
    expect_ok(send(*alice_client, carol, "hello " + std::to_string(i), "k" + std::to_string(i)));
    auto delivered = bob_again->next_event("message");
    ASSERT_TRUE(delivered.has_value());
    EXPECT_EQ(delivered->at("message").as_string(), "hello " + std::to_string(i));
  }
  ASSERT_EQ(apns_->wait_for(event_for("request", "hang-1"), 2).size(), 2u);
  EXPECT_EQ(await_metric("parley_push_apns_dropped_queue_full_total", 3), 3);
  EXPECT_EQ(await_metric("parley_push_apns_queue_pending", 2), 2);
  // Requests still hanging do not hold shutdown up, and are not lost
  // silently: one line says how many went.
  EXPECT_EQ(server_->stop(), 0);
  const std::string log = server_->log();
  EXPECT_NE(log.find("stopping: dropped 2 apns pushes still queued, in flight or waiting for a "
                     "retry"),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace parley::test

namespace parley::test {
namespace {

std::string apns_yaml(const std::string& key_file) {
  return "  - name: push_apns\n    config:\n      key_file: " + key_file +
         "\n      key_id: ABC123DEFG\n      team_id: DEF123GHIJ\n      topic: org.parley.app\n";
}

TEST(ApnsCheckConfig, NamesAMissingOrWrongKey) {
  TestKeys keys;
  auto [status, output] = check_config(apns_yaml("/nonexistent/AuthKey.p8"));
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find("plugins[0].config.key_file: /nonexistent/AuthKey.p8: cannot read"),
            std::string::npos)
      << output;
  // An RSA key is not an APNs signing key.
  std::tie(status, output) = check_config(apns_yaml(keys.rsa_key.string()));
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find("not an EC P-256 key"), std::string::npos) << output;
  std::tie(status, output) = check_config(apns_yaml(keys.ec_key.string()));
  EXPECT_EQ(status, 0) << output;
}

TEST(ApnsCheckConfig, NamesAMissingOrWrongCaFile) {
  TestKeys keys;
  auto [status, output] =
      check_config(apns_yaml(keys.ec_key.string()) + "      ca_file: /nonexistent/ca.pem\n");
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find("plugins[0].config.ca_file: /nonexistent/ca.pem: cannot read"),
            std::string::npos)
      << output;
  // A key is not a certificate.
  std::tie(status, output) = check_config(apns_yaml(keys.ec_key.string()) +
                                          "      ca_file: " + keys.ec_key.string() + "\n");
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find(": no PEM certificate in it"), std::string::npos) << output;
  std::tie(status, output) =
      check_config(apns_yaml(keys.ec_key.string()) + "      ca_file: " + keys.cert.string() + "\n");
  EXPECT_EQ(status, 0) << output;
}

}  // namespace
}  // namespace parley::test
