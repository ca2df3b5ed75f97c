// SQL the session plugin runs on every login, shared with the tests that
// check its plans on a large table (tests/plan_test.cpp).
#pragma once

#include <cstdint>
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

// A page of the conversations of user $1, newest activity first, after the
// cursor ($2 activity, $3 conversation; both NULL for the first page), at
// most $4; select columns of aliases `p` (the participant row and its
// `last_activity`), `m` (its last message it may see) and `r` (for a group
// message: its other current members there when it was written, how many
// have it delivered, read) before it.
// The order is the conversation's activity, which lives in its one
// `conversations` row: keeping a copy in every member's row would cost each
// send a write per member (256 in a full group). So the page is chosen from
// the user's rows and their conversations' activity alone (one index entry
// and one key lookup each), and everything else (the last message, the
// unread count, the group counts) is read for the page's rows only. A former
// group member's entry stays at the change that removed them: the group
// does not rise in their list with activity they cannot see.
inline constexpr std::string_view kConversationsPage =
    " FROM (SELECT * FROM (SELECT p.*, coalesce(CASE WHEN p.left_seq IS NOT NULL THEN"
    "       (SELECT e.created_at FROM messages e"
    "         WHERE e.conversation = p.conversation AND e.seq = p.left_seq) END,"
    // A subquery, not a join: a key lookup per row of the user's, never a
    // hash of every conversation stored.
    "       (SELECT c.last_activity FROM conversations c WHERE c.id = p.conversation))"
    "     AS last_activity"
    "   FROM participants p WHERE p.user_id = $1) a"
    "   WHERE $2::timestamptz IS NULL OR (a.last_activity, a.conversation) < ($2, $3)"
    "   ORDER BY a.last_activity DESC, a.conversation DESC LIMIT $4) p"
    // A former member sees the conversation up to their removal.
    " LEFT JOIN LATERAL (SELECT * FROM messages x WHERE x.conversation = p.conversation"
    "   AND (p.left_seq IS NULL OR x.seq <= p.left_seq)"
    "   ORDER BY x.seq DESC LIMIT 1) m ON true"
    " LEFT JOIN LATERAL (SELECT count(*) AS others,"
    "   count(*) FILTER (WHERE q.delivered_seq >= m.seq) AS delivered_by,"
    "   count(*) FILTER (WHERE q.read_seq >= m.seq) AS read_by"
    "   FROM participants q WHERE q.conversation = p.conversation"
    "   AND q.user_id <> m.sender_id AND q.left_seq IS NULL"
    "   AND q.joined_seq <= m.seq) r ON m.group_id IS NOT NULL"
    " ORDER BY p.last_activity DESC, p.conversation DESC";

inline constexpr std::int64_t kUnreadWindow = 1000;

// For kConversationsPage, with kUnreadWindow as $5: `unread`, the messages
// from others among the newest $5 the user may see above p.read_seq (seqs
// are gapless, so the window is one range of the (conversation, seq)
// index), and whether more than $5 messages are above p.read_seq.
inline constexpr std::string_view kConversationsUnread =
    "(SELECT count(*) FROM messages u WHERE u.conversation = p.conversation"
    "   AND u.seq > greatest(p.read_seq, m.seq - $5) AND u.seq <= m.seq"
    "   AND u.sender_id <> $1),"
    " coalesce(m.seq - p.read_seq > $5, false)";

}  // namespace parley::session::queries
