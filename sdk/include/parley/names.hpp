// The names the kernel itself uses on the bus and on the wire. Plugins use
// these constants instead of repeating the strings; the payloads are
// documented in docs/plugins.md ("Ownership map") and stay stable within
// an SDK ABI version, so that a cluster bridge can carry them between nodes.
#pragma once

#include <string_view>

namespace parley::names {

// Events the kernel publishes.
// {"connection": 17, "user_id": "42" or "", "user_connected": bool (only with a user)}
inline constexpr std::string_view kConnectionClosed = "gateway.connection.closed";
// {"connection": 17, "user_id": "42"}: the connection, still open, is no
// longer logged in as user_id (logged out, its login ended, or bound to
// another user). Per-connection state kept for that user is now stale.
inline constexpr std::string_view kConnectionUnbound = "gateway.connection.unbound";
// {"user_id": "42"}: the user's first logged-in connection on this node.
inline constexpr std::string_view kUserOnline = "gateway.user.online";
// {"user_id": "42"}: the user's last logged-in connection on this node went
// away (closed, logged out, or its login ended).
inline constexpr std::string_view kUserOffline = "gateway.user.offline";
// {"user_id": "42", "at": "2026-11-30T12:00:00.123Z"}: the user sent a frame.
// Published at login and then at most once per server.activity_interval_ms.
inline constexpr std::string_view kUserActive = "gateway.user.active";

// The request type the kernel answers itself (it counts as activity).
inline constexpr std::string_view kPing = "ping";

}  // namespace parley::names
