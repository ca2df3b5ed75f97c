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

}  // namespace parley::session::queries
