// What must survive: a killed server, a database that goes away, and the
// extension points other plugins rely on (hooks, stored events, push offers).
#include <gmock/gmock.h>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "session_fixture.hpp"
#include "temp_dir.hpp"

namespace parley::test {
namespace {

using ::testing::HasSubstr;
using ResilienceTest = SessionTest;

TEST_F(ResilienceTest, MessageAcknowledgedBeforeSigkillIsDeliveredAfterRestart) {
  auto [alice, a] = online_user("alice");
  auto b = connect();
  User bob = register_user(*b, "bob");
  auto ok = send(*a, bob, "survives", "k1");
  expect_ok(ok);
  server_->kill_hard();
  a.reset();
  b.reset();
  server_->start();
  auto again = connect();
  auto events = login(*again, bob);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("message").as_string(), "survives");
  EXPECT_EQ(events[0].at("message_id"), ok.at("message_id"));
  // Idempotency holds across the restart too.
  auto a2 = connect();
  login_with_token(*a2, alice);
  auto repeat = send(*a2, bob, "survives", "k1");
  EXPECT_EQ(repeat.at("message_id"), ok.at("message_id"));
}

class HungDatabaseTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    auto options = server_options();
    options.database_yaml = "  query_timeout_ms: 1000\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }
  // Sends are refused while a stuck statement has not returned, which can
  // be a moment after /readyz is back: retried, as a client does on
  // `unavailable`.
  static json::object send_retrying(WsClient& from, const User& to, const std::string& text,
                                    const std::string& client_msg_id) {
    json::object reply;
    for (const auto deadline = std::chrono::steady_clock::now() + 20s;
         std::chrono::steady_clock::now() < deadline;) {
      reply = send(from, to, text, client_msg_id);
      if (reply.at("type").as_string() == "ok") break;
      std::this_thread::sleep_for(50ms);
    }
    return reply;
  }
  // Thaws the database whatever the test's outcome, or the next test hangs.
  struct Resume {
    ~Resume() { TestPostgres::shared().resume(); }
  };
};

TEST_F(HungDatabaseTest, ADatabaseThatStopsAnsweringGivesUnavailableAndNotReadyWithinTheTimeout) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  {
    Resume resume;
    TestPostgres::shared().pause();
    // Answered within the configured timeout (1 s), well before the client's own.
    expect_error(send(*a, bob, "into the void", "h1"), "unavailable");
    expect_error(a->request({{"type", "history"}, {"conversation", conversation_of(alice, bob)}}),
                 "unavailable");
    EXPECT_TRUE(server_->wait_ready(503, 10s)) << "readyz should report not ready";
    expect_ok(a->request({{"type", "ping"}}));
  }
  EXPECT_TRUE(server_->wait_ready(200, 20s)) << server_->log();
  // The send that was answered unavailable may have been stored after all:
  // repeating it with its client_msg_id gives one message either way.
  expect_ok(send_retrying(*a, bob, "into the void", "h1"));
  auto history = a->request({{"type", "history"}, {"conversation", conversation_of(alice, bob)}});
  ASSERT_EQ(history.at("type").as_string(), "ok");
  EXPECT_EQ(history.at("messages").as_array().size(), 1u);
}

// A batch whose statement hangs past the timeout is answered while its job
// still runs; the job finishing later must find its batch intact, and sends
// meanwhile are refused rather than queued behind it.
TEST_F(HungDatabaseTest, AWriteStuckPastTheTimeoutIsAnsweredAndTheServerLivesOn) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto pid = server_->pid();
  // Known users in a known conversation: the next sends take the
  // single-statement path.
  expect_ok(send(*a, bob, "first", "s1"));
  {
    Resume resume;
    TestPostgres::shared().pause();
    expect_error(send(*a, bob, "stuck", "s2"), "unavailable");
    expect_error(send(*a, bob, "behind it", "s3"), "unavailable");
  }
  EXPECT_TRUE(server_->wait_ready(200, 20s)) << server_->log();
  expect_ok(send_retrying(*a, bob, "after", "s4"));
  EXPECT_EQ(server_->pid(), pid);
  EXPECT_TRUE(server_->running()) << server_->log();
  // The stuck send committed when the database came back, or is stored by
  // its retry: once either way. The refused one was never stored.
  expect_ok(send_retrying(*a, bob, "stuck", "s2"));
  auto history = a->request({{"type", "history"}, {"conversation", conversation_of(alice, bob)}});
  ASSERT_EQ(history.at("type").as_string(), "ok");
  std::vector<std::string> texts;
  for (const auto& m : history.at("messages").as_array())
    texts.emplace_back(m.at("message").as_string());
  EXPECT_EQ(texts.size(), 3u);
  EXPECT_EQ(std::count(texts.begin(), texts.end(), "stuck"), 1);
  EXPECT_EQ(std::count(texts.begin(), texts.end(), "behind it"), 0);
  EXPECT_THAT(http_get(server_->port(), "/metrics").body,
              testing::ContainsRegex("parley_session_write_stalls_total [1-9]"));
}

// PostgreSQL itself ends a statement that outlives the timeout: a write
// stuck behind a lock frees its connection, and the writer its stall,
// while the lock is still held.
TEST_F(HungDatabaseTest, AStatementStuckBehindALockIsCancelledByTheServer) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  expect_ok(send(*a, bob, "first", "l1"));
  pqxx::connection locker(database_url_);
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE");
  expect_error(send(*a, bob, "behind the lock", "l2"), "unavailable");
  pqxx::connection observer(database_url_);
  auto waiting = [&] {
    pqxx::nontransaction tx(observer);
    return tx.exec1("SELECT count(*) FROM pg_locks WHERE NOT granted")[0].as<int>();
  };
  int still_waiting = 1;
  for (const auto deadline = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < deadline && still_waiting > 0;) {
    std::this_thread::sleep_for(50ms);
    still_waiting = waiting();
  }
  EXPECT_EQ(still_waiting, 0) << "the stuck statement still waits for the lock";
  lock.abort();
  expect_ok(send_retrying(*a, bob, "after the lock", "l3"));
}

// Sends pipelined from many connections while the database is behind must
// not grow the writer's queue without end: past write_queue_max_bytes they
// are refused at once, and the ones taken are all written, in order.
class WriterQueueTest : public SessionTest {
 protected:
  std::string session_config() const override { return "      write_queue_max_bytes: 1048576\n"; }
};

TEST_F(WriterQueueTest, SendsPastTheQueueBoundAreRefusedAtOnceAndTheRestWritten) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  expect_ok(send(*a, bob, "first", "q0"));
  // The writer's next batch waits behind this lock; the sends queue.
  pqxx::connection locker(database_url_);
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE");
  std::string euros;
  for (int i = 0; i < 4000; ++i) euros += "\xe2\x82\xac";  // 12 KB: about 85 fit in 1 MiB
  constexpr int kSends = 200;
  for (int i = 1; i <= kSends; ++i) {
    a->send({{"type", "send"},
             {"id", "s" + std::to_string(i)},
             {"to", bob.id},
             {"message", euros},
             {"client_msg_id", "q" + std::to_string(i)}});
  }
  // The refusals come while the lock is still held.
  std::map<int, json::object> replies;
  int refused = 0;
  while (refused == 0) {
    auto frame = a->receive(10s);
    ASSERT_TRUE(frame) << "no refusal while the writer was stuck";
    if (!frame->contains("re")) continue;
    const int n = std::stoi(std::string(frame->at("re").as_string()).substr(1));
    if (frame->at("type").as_string() == "error") {
      EXPECT_EQ(frame->at("code").as_string(), "unavailable") << json::serialize(*frame);
      ++refused;
    }
    replies[n] = std::move(*frame);
  }
  lock.abort();
  while (static_cast<int>(replies.size()) < kSends) {
    auto frame = a->receive(20s);
    ASSERT_TRUE(frame) << replies.size() << " replies of " << kSends;
    if (!frame->contains("re")) continue;
    replies[std::stoi(std::string(frame->at("re").as_string()).substr(1))] = std::move(*frame);
  }
  int stored = 0;
  std::int64_t last_seq = 1;
  for (const auto& [n, reply] : replies) {
    if (reply.at("type").as_string() != "ok") {
      EXPECT_EQ(reply.at("code").as_string(), "unavailable");
      continue;
    }
    ++stored;
    EXPECT_GT(reply.at("seq").as_int64(), last_seq) << "send " << n;
    last_seq = reply.at("seq").as_int64();
  }
  EXPECT_GT(stored, 0);
  EXPECT_LT(stored, kSends) << "the queue was never full";
  pqxx::connection observer(database_url_);
  pqxx::nontransaction tx(observer);
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM messages WHERE conversation = $1",
                            conversation_of(alice, bob))[0]
                .as<int>(),
            1 + stored);
}

TEST_F(ResilienceTest, DatabaseOutageGivesUnavailableThenRecoversInTheSameProcess) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  const auto pid = server_->pid();
  TestPostgres::shared().stop();
  auto during = send(*a, bob, "while down", "d1");
  expect_error(during, "unavailable");
  expect_error(a->request({{"type", "history"}, {"conversation", conversation_of(alice, bob)}}),
               "unavailable");
  EXPECT_TRUE(server_->wait_ready(503, 10s)) << "readyz should report not ready";
  // The connection stays usable.
  expect_ok(a->request({{"type", "ping"}}));

  TestPostgres::shared().start();
  EXPECT_TRUE(server_->wait_ready(200, 20s)) << server_->log();
  auto after = send(*a, bob, "back again", "d2");
  expect_ok(after);
  auto event = b->next_event("message");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->at("message").as_string(), "back again");
  EXPECT_EQ(server_->pid(), pid);
}

TEST(MigrationTest, TwoServersStartingTogetherApplyEachMigrationOnce) {
  const auto url = TestPostgres::shared().create_database("migration_race");
  ParleydProcess::Options options;
  options.database_url = url;
  options.plugins_yaml = "  - name: session\n";
  options.wait_ready = false;
  ParleydProcess first(options);
  ParleydProcess second(options);
  ASSERT_TRUE(first.wait_ready()) << first.log();
  ASSERT_TRUE(second.wait_ready()) << second.log();
  pqxx::connection conn(url);
  pqxx::read_transaction tx(conn);
  const auto rows = tx.exec(
      "SELECT version, count(*) FROM parley_migrations WHERE component = 'session'"
      " GROUP BY version ORDER BY version");
  ASSERT_EQ(rows.size(), 6u);
  for (const auto& row : rows) EXPECT_EQ(row[1].as<int>(), 1);
  // Between them, each migration was applied (and logged) exactly once.
  const auto logs = first.log() + second.log();
  for (const char* name :
       {"applied migration 001_accounts.sql", "applied migration 002_messages.sql",
        "applied migration 003_groups.sql", "applied migration 004_devices.sql",
        "applied migration 005_identifier_collation.sql",
        "applied migration 006_known_login_addresses.sql"}) {
    const auto at = logs.find(name);
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_EQ(logs.find(name, at + 1), std::string::npos) << name << " applied twice";
  }
}

TEST_F(ResilienceTest, SigtermStopsCleanly) {
  auto [alice, a] = online_user("alice");
  EXPECT_EQ(server_->stop(), 0);
  EXPECT_TRUE(a->wait_closed());
}

// The session plugin next to the kernel tests' journal plugin, which records
// bus events and filters messages through the before-store hook.
class ExtensionTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    server_.reset();
    auto options = server_options();
    options.plugins_yaml +=
        std::string("  - name: alpha\n    library: ") + JOURNAL_PLUGIN_PATH +
        "\n    config:\n      journal: " + journal().string() +
        "\n      record: [session.message.stored, push.offer.fcm, session.receipt]"
        "\n      filter:\n        hook: session.message.before_store\n        veto: spam"
        "\n        rewrite_from: darn\n        rewrite_to: '****'\n";
    server_ = std::make_unique<ParleydProcess>(options);
  }
  std::filesystem::path journal() const { return dir_.path() / "journal"; }
  // Registering needs a push plugin serving the platform; the journal
  // plugin serves none, so the device goes straight into the table.
  void add_device(const User& user, const std::string& token) {
    pqxx::connection conn(database_url_);
    pqxx::work tx(conn);
    tx.exec_params("INSERT INTO devices (token, user_id, platform) VALUES ($1, $2, 'fcm')", token,
                   std::stoll(user.id));
    tx.commit();
  }
  std::string wait_for_journal(const std::string& needle) {
    for (int i = 0; i < 100; ++i) {
      auto text = read_file(journal());
      if (text.find(needle) != std::string::npos) return text;
      std::this_thread::sleep_for(50ms);
    }
    return read_file(journal());
  }
  TempDir dir_;
};

TEST_F(ExtensionTest, ARetryOfAStoredMessageGetsItsFirstOkEvenIfAHookWouldVetoItNow) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto first = send(*a, bob, "all fine", "r1");
  expect_ok(first);
  // The same client_msg_id, content the filter refuses: the protocol
  // promises the first ok, whatever the content.
  auto retry = send(*a, bob, "now with spam", "r1");
  expect_ok(retry);
  EXPECT_EQ(retry.at("message_id"), first.at("message_id"));
  // A new message with that content is still vetoed, with the filter's code.
  expect_error(send(*a, bob, "more spam", "r2"), "forbidden");
}

TEST_F(ExtensionTest, HookMayVetoOrRewriteBeforeStore) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  auto vetoed = send(*a, bob, "buy spam now", "v1");
  expect_error(vetoed, "forbidden");
  EXPECT_EQ(vetoed.at("message").as_string(), "message refused by filter");
  EXPECT_TRUE(b->no_event("message"));
  expect_ok(send(*a, bob, "oh darn", "r1"));
  auto event = b->next_event("message");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->at("message").as_string(), "oh ****");
}

TEST_F(ExtensionTest, StoredEventIsPublished) {
  auto [alice, a] = online_user("alice");
  auto [bob, b] = online_user("bob");
  add_device(bob, "bob-phone");
  auto ok = send(*a, bob, "observed", "s1");
  const auto journal_text = wait_for_journal("session.message.stored");
  EXPECT_THAT(journal_text, HasSubstr("\"event\":\"session.message.stored\""));
  EXPECT_THAT(journal_text,
              HasSubstr("\"message_id\":\"" + std::string(ok.at("message_id").as_string()) + "\""));
  EXPECT_THAT(journal_text, HasSubstr("\"message\":\"observed\""));
  // Bob is online: no push offer.
  EXPECT_THAT(read_file(journal()), ::testing::Not(HasSubstr("push.offer")));
}

TEST_F(ExtensionTest, OfflineRecipientIsOfferedAPush) {
  auto [alice, a] = online_user("alice");
  auto b = connect();
  User bob = register_user(*b, "bob");
  add_device(bob, "bob-phone");
  auto ok = send(*a, bob, "wake up", "p1");
  expect_ok(send(*a, bob, "second", "p2"));
  const auto journal_text = wait_for_journal("\"badge\":2");
  EXPECT_THAT(journal_text, HasSubstr("\"event\":\"push.offer.fcm\""));
  EXPECT_THAT(journal_text, HasSubstr("\"tokens\":[\"bob-phone\"]"));
  EXPECT_THAT(journal_text, HasSubstr("\"user_id\":\"" + bob.id + "\""));
  EXPECT_THAT(journal_text, HasSubstr("\"title\":\"alice\""));
  EXPECT_THAT(journal_text, HasSubstr("\"body\":\"wake up\""));
  EXPECT_THAT(journal_text,
              HasSubstr("\"message_id\":\"" + std::string(ok.at("message_id").as_string()) + "\""));
  EXPECT_THAT(journal_text, HasSubstr("\"badge\":2"));
}

}  // namespace
}  // namespace parley::test
