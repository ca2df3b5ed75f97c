// SQL the session plugin runs on every login, shared with the tests that
// check its plans on a large table (tests/plan_test.cpp).
#pragma once

#include <string_view>

namespace parley::session::queries {

// From the pending messages of user $1 with an id above $2, at most $3, in
// id order; select columns of alias `m` before it. Per conversation of the
// user, by the (conversation, seq) index: its cost follows the user's own
// conversations and backlog, never the size of the messages table.
inline constexpr std::string_view kPendingPage =
    " FROM participants p CROSS JOIN LATERAL ("
    "   SELECT * FROM messages x WHERE x.conversation = p.conversation"
    "   AND x.seq > p.delivered_seq AND x.id > $2 AND x.sender_id <> p.user_id"
    // A former group member gets nothing past their removal.
    "   AND (p.left_seq IS NULL OR x.seq <= p.left_seq)"
    "   ORDER BY x.seq LIMIT $3) m"
    " WHERE p.user_id = $1 ORDER BY m.id LIMIT $3";

// The receipts a login catches up on: the marks of others that moved after
// $2 in the conversations of user $1, oldest first, as the live path would
// have sent them. Only to a current member, and only for a mark that passed
// one of the user's own messages; that one is looked for among the 1000
// messages below the mark, by the (conversation, seq) index, so the cost
// follows the user's conversations, not their whole history. A mark that
// moved only with a read (read_seq caught up with delivered_seq) is one
// `read` receipt, not also a `delivered` one. Columns: conversation,
// reader, delivered_seq, read_seq, send delivered?, send read?
inline constexpr std::string_view kMovedReceipts =
    "SELECT o.conversation, o.user_id, o.delivered_seq, o.read_seq,"
    " o.delivered_at > $2::timestamptz"
    "   AND NOT coalesce(o.read_at > $2::timestamptz AND o.read_seq >= o.delivered_seq, false),"
    " o.read_at > $2::timestamptz"
    " FROM participants me JOIN participants o"
    "   ON o.conversation = me.conversation AND o.user_id <> me.user_id"
    " WHERE me.user_id = $1 AND me.left_seq IS NULL"
    "   AND (o.delivered_at > $2::timestamptz OR o.read_at > $2::timestamptz)"
    "   AND EXISTS (SELECT 1 FROM (SELECT x.sender_id FROM messages x"
    "     WHERE x.conversation = o.conversation AND x.seq > me.joined_seq"
    "     AND x.seq <= o.delivered_seq ORDER BY x.seq DESC LIMIT 1000) recent"
    "     WHERE recent.sender_id = me.user_id)"
    " ORDER BY greatest(o.delivered_at, o.read_at)";

}  // namespace parley::session::queries
