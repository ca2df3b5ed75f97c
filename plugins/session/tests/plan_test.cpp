// The login catch-up on a large store: its plan reads the user's own
// conversations through indexes, never the whole messages table (a walk of
// messages_pkey made every login cost as much as everything ever stored).
#include <gmock/gmock.h>

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
