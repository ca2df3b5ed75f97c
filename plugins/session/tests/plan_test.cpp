// The login catch-up on a large store: its plan reads the user's own
// conversations through indexes, never the whole messages table (a walk of
// messages_pkey made every login cost as much as everything ever stored).
#include <gmock/gmock.h>

#include <algorithm>
#include <optional>
#include <sstream>
#include <utility>

#include <pqxx/pqxx>

#include "../src/queries.hpp"
#include "session_fixture.hpp"

namespace parley::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PlanTest : public SessionTest {
 protected:
  // 2,000 conversations of 250 messages: half a million stored messages,
  // and statistics that describe them.
  void seed(pqxx::connection& conn) {
    pqxx::work tx(conn);
    tx.exec(
        "INSERT INTO conversations (id, last_seq)"
        " SELECT 'd:' || (100000 + i) || ':' || (200000 + i), 250 FROM generate_series(1, 2000) i");
    tx.exec(
        "INSERT INTO participants (conversation, user_id, delivered_seq, read_seq)"
        " SELECT 'd:' || (100000 + i) || ':' || (200000 + i), u, CASE WHEN u < 200000 THEN 250"
        " ELSE 200 END, 0 FROM generate_series(1, 2000) i,"
        " LATERAL (VALUES (100000 + i), (200000 + i)) v(u)");
    tx.exec(
        "INSERT INTO messages (conversation, seq, sender_id, recipient_id, body, created_at)"
        " SELECT 'd:' || (100000 + i) || ':' || (200000 + i), s, 100000 + i, 200000 + i,"
        " 'message ' || s, now() FROM generate_series(1, 2000) i, generate_series(1, 250) s");
    tx.commit();
    pqxx::nontransaction(conn).exec("ANALYZE");
  }

  std::string plan_of_pending_page(pqxx::connection& conn, std::int64_t user) {
    pqxx::nontransaction tx(conn);
    std::string plan;
    for (const auto& row : tx.exec_params("EXPLAIN (ANALYZE, COSTS OFF) SELECT m.id" +
                                              std::string(session::queries::kPendingPage),
                                          user, 0, 200)) {
      plan += row[0].as<std::string>() + "\n";
    }
    return plan;
  }
};

TEST_F(PlanTest, TheCatchUpReadsOnlyTheUsersOwnRowsOnALargeStore) {
  pqxx::connection conn(database_url_);
  seed(conn);
  // A user with no conversation at all, and one with 50 pending messages.
  for (const std::int64_t user : {999999LL, 200001LL}) {
    const auto plan = plan_of_pending_page(conn, user);
    EXPECT_THAT(plan, Not(HasSubstr("Seq Scan on messages"))) << plan;
    EXPECT_THAT(plan, Not(HasSubstr("messages_pkey"))) << plan;
    EXPECT_THAT(plan, HasSubstr("participants_user")) << plan;
  }
  // And it finds exactly the pending ones.
  pqxx::nontransaction tx(conn);
  const auto rows =
      tx.exec_params("SELECT m.id" + std::string(session::queries::kPendingPage), 200001, 0, 200);
  EXPECT_EQ(rows.size(), 50u);
}

TEST_F(PlanTest, TheCatchUpsReceiptsReadOnlyTheUsersOwnRowsOnALargeStore) {
  pqxx::connection conn(database_url_);
  seed(conn);
  // The reader of conversation 1 read on to 220 after its sender went
  // offline. The sender of conversation 2 read too, but that mark passes
  // no message of its peer, who sent none.
  pqxx::nontransaction(conn).exec(
      "UPDATE participants SET read_seq = 220, read_at = now() WHERE user_id IN (200001, 100002)");
  const auto since = pqxx::nontransaction(conn)
                         .exec1("SELECT (now() - interval '1 hour')::text")[0]
                         .as<std::string>();
  const std::string query(session::queries::kMovedReceipts);
  for (const std::int64_t user : {999999LL, 100001LL, 200002LL}) {
    pqxx::nontransaction tx(conn);
    std::string plan;
    for (const auto& row : tx.exec_params("EXPLAIN (ANALYZE, COSTS OFF) " + query, user, since)) {
      plan += row[0].as<std::string>() + "\n";
    }
    EXPECT_THAT(plan, Not(HasSubstr("Seq Scan on messages"))) << plan;
    EXPECT_THAT(plan, Not(HasSubstr("messages_pkey"))) << plan;
    EXPECT_THAT(plan, HasSubstr("participants_user")) << plan;
  }
  pqxx::nontransaction tx(conn);
  const auto rows = tx.exec_params(query, 100001, since);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][1].as<std::int64_t>(), 200001);
  EXPECT_EQ(rows[0][3].as<std::int64_t>(), 220);
  EXPECT_TRUE(rows[0][5].as<bool>());
  EXPECT_TRUE(tx.exec_params(query, 200002, since).empty());
}

// `conversations` for a user in 20,000 conversations (200,000 messages),
// one of them 1,500 messages behind: a page reads its own rows, in the
// order of the user's index, never all of the user's conversations (each
// page cost a quarter of a second at 19,000 groups), and the unread count
// reads at most the window however far behind the reader is.
class ConversationsPlanTest : public PlanTest {
 protected:
  static constexpr std::int64_t kUser = 1;
  static constexpr std::int64_t kPage = 200;

  void seed_conversations(pqxx::connection& conn) {
    pqxx::work tx(conn);
    tx.exec(
        "INSERT INTO conversations (id, last_seq, last_activity)"
        " SELECT 'd:1:' || (100000 + i), 10, now() - i * interval '1 second'"
        " FROM generate_series(1, 20000) i");
    tx.exec(
        "INSERT INTO participants (conversation, user_id, delivered_seq, read_seq)"
        " SELECT 'd:1:' || (100000 + i), u, 10, 8 FROM generate_series(1, 20000) i,"
        " LATERAL (VALUES (1), (100000 + i)) v(u)");
    tx.exec(
        "INSERT INTO messages (conversation, seq, sender_id, recipient_id, body, created_at)"
        " SELECT 'd:1:' || (100000 + i), s, 100000 + i, 1, 'message ' || s, now()"
        " FROM generate_series(1, 20000) i, generate_series(1, 10) s");
    // Other users' conversations, ten times as many: a plan that reads
    // every conversation or participant stored shows.
    tx.exec(
        "INSERT INTO conversations (id, last_seq, last_activity)"
        " SELECT 'd:2:' || (100000 + i), 0, now() - i * interval '1 second'"
        " FROM generate_series(1, 200000) i");
    tx.exec(
        "INSERT INTO participants (conversation, user_id)"
        " SELECT 'd:2:' || (100000 + i), u FROM generate_series(1, 200000) i,"
        " LATERAL (VALUES (2), (100000 + i)) v(u)");
    // The newest conversation: 1,500 messages above the user's read_seq.
    tx.exec(
        "INSERT INTO messages (conversation, seq, sender_id, recipient_id, body, created_at)"
        " SELECT 'd:1:100001', s, 100001, 1, 'message ' || s, now()"
        " FROM generate_series(11, 1508) s");
    tx.exec(
        "UPDATE conversations SET last_seq = 1508, last_activity = now() WHERE id = 'd:1:100001'");
    tx.commit();
    pqxx::nontransaction(conn).exec("ANALYZE");
  }

  static std::string page_query() {
    return "SELECT p.conversation, p.last_activity::text, " +
           std::string(session::queries::kConversationsUnread) +
           std::string(session::queries::kConversationsPage);
  }

  // The plan of a page of kPage after `cursor` (none: the first page).
  static std::string plan_of_page(
      pqxx::connection& conn, const std::optional<std::pair<std::string, std::string>>& cursor) {
    pqxx::nontransaction tx(conn);
    std::string plan;
    for (const auto& row : tx.exec_params("EXPLAIN (ANALYZE, COSTS OFF) " + page_query(), kUser,
                                          cursor ? std::optional(cursor->first) : std::nullopt,
                                          cursor ? std::optional(cursor->second) : std::nullopt,
                                          kPage, session::queries::kUnreadWindow)) {
      plan += row[0].as<std::string>() + "\n";
    }
    return plan;
  }

  // The most rows one node of `plan` produced in all its loops, among the
  // lines that hold `node`.
  static std::int64_t rows_of(const std::string& plan, const std::string& node) {
    std::int64_t most = 0;
    std::istringstream lines(plan);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(node) == std::string::npos) continue;
      const auto at = line.find(" rows=");
      const auto loops = line.find(" loops=");
      if (at == std::string::npos || loops == std::string::npos) continue;
      most = std::max<std::int64_t>(
          most, std::stoll(line.substr(at + 6)) * std::stoll(line.substr(loops + 7)));
    }
    return most;
  }
};

TEST_F(ConversationsPlanTest, APageReadsMessagesForItsOwnRowsOnly) {
  pqxx::connection conn(database_url_);
  seed_conversations(conn);
  const auto middle = pqxx::nontransaction(conn).exec1(
      "SELECT c.last_activity::text, c.id FROM conversations c WHERE c.id = 'd:1:110000'");
  for (const auto& cursor :
       {std::optional<std::pair<std::string, std::string>>{},
        std::optional(std::pair(middle[0].as<std::string>(), middle[1].as<std::string>()))}) {
    const auto plan = plan_of_page(conn, cursor);
    // The user's rows by their index, each conversation by its key.
    EXPECT_THAT(plan, Not(HasSubstr("Seq Scan"))) << plan;
    EXPECT_THAT(plan, HasSubstr("participants_user")) << plan;
    EXPECT_LE(rows_of(plan, "on conversations"), 20000) << plan;
    // The last message of the page's rows only, one each.
    EXPECT_LE(rows_of(plan, "on messages x"), kPage) << plan;
    // The unread counts: the window of the one far-behind conversation,
    // and a few messages of each other one of the page.
    EXPECT_LE(rows_of(plan, "on messages u"), session::queries::kUnreadWindow + 10 * kPage) << plan;
  }
}

TEST_F(ConversationsPlanTest, PagesFollowTheNewestActivityAndTheUnreadCountStopsAtTheWindow) {
  pqxx::connection conn(database_url_);
  seed_conversations(conn);
  pqxx::nontransaction tx(conn);
  const auto first =
      tx.exec_params(page_query(), kUser, std::optional<std::string>(),
                     std::optional<std::string>(), kPage, session::queries::kUnreadWindow);
  ASSERT_EQ(first.size(), static_cast<std::size_t>(kPage));
  EXPECT_EQ(first[0][0].as<std::string>(), "d:1:100001");
  EXPECT_EQ(first[0][2].as<std::int64_t>(), session::queries::kUnreadWindow);
  EXPECT_TRUE(first[0][3].as<bool>());
  EXPECT_EQ(first[1][0].as<std::string>(), "d:1:100002");
  EXPECT_EQ(first[1][2].as<std::int64_t>(), 2);
  EXPECT_FALSE(first[1][3].as<bool>());
  const auto& last = first[first.size() - 1];
  const auto next =
      tx.exec_params(page_query(), kUser, last[1].as<std::string>(), last[0].as<std::string>(),
                     kPage, session::queries::kUnreadWindow);
  ASSERT_EQ(next.size(), static_cast<std::size_t>(kPage));
  EXPECT_EQ(next[0][0].as<std::string>(), "d:1:100201");
}

// Identifiers are compared byte by byte in every index that holds them
// (005_identifier_collation.sql), whatever the database's own collation.
TEST_F(PlanTest, IdentifierColumnsUseTheBytewiseCollation) {
  pqxx::connection conn(database_url_);
  pqxx::nontransaction tx(conn);
  const auto rows = tx.exec(
      "SELECT c.relname || '.' || a.attname, coalesce(k.collname, '')"
      " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
      " LEFT JOIN pg_collation k ON k.oid = a.attcollation"
      " WHERE (c.relname, a.attname) IN (('conversations', 'id'),"
      " ('participants', 'conversation'), ('messages', 'conversation'),"
      " ('messages', 'client_msg_id'), ('devices', 'token'))"
      " ORDER BY 1");
  ASSERT_EQ(rows.size(), 5u);
  for (const auto& row : rows) EXPECT_EQ(row[1].as<std::string>(), "C") << row[0].as<std::string>();
}

}  // namespace
}  // namespace parley::test
