// Small conversions between the protocol's forms and the store's.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <pqxx/pqxx>

#include <parley/gateway.hpp>
#include <parley/sql_arrays.hpp>
#include <parley/timestamp.hpp>

namespace parley::session {

// A user id as the protocol writes it ("42") to the store's bigint;
// nullopt for anything that cannot be one.
std::optional<std::int64_t> parse_user_id(std::string_view text);

// d:A:B with A < B as strings compare.
std::string direct_conversation(std::string_view a, std::string_view b);

// The two participants of "d:A:B", or nullopt when `id` is not a valid 1:1 id.
std::optional<std::pair<std::string, std::string>> direct_participants(std::string_view id);

// SQL expression rendering a timestamptz column that way.
std::string sql_timestamp(std::string_view column);

// Unicode code points in valid UTF-8 text.
std::size_t utf8_length(std::string_view text);

// PostgreSQL array literals, for unnest($1::text[]) and = ANY($1::bigint[]).
using sql::bigint_array;
using sql::text_array;

// One stored message, as the protocol shows it.
struct StoredMessage {
  std::int64_t id = 0;
  std::string conversation;
  std::int64_t seq = 0;
  std::int64_t sender_id = 0;
  std::optional<std::int64_t> recipient_id;
  std::optional<std::int64_t> group_id;
  std::string body;
  std::string event_type = "user";
  std::string timestamp;
};

// The columns read_message() expects, in order, from table alias `m`.
std::string message_columns(std::string_view alias = "m");
StoredMessage read_message(const pqxx::row& row, int first_column = 0);

// The frame of {"type":"message", ...} with `status`, deduplicated by the
// message id ("m:<id>") against a login catch-up.
Frame message_event(const StoredMessage& m, std::string_view status);
// The same object without "type", as history and conversations list it.
boost::json::object message_object(const StoredMessage& m, std::string_view status);

}  // namespace parley::session
