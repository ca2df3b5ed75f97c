#include "wire.hpp"

#include <charconv>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <boost/json/serializer.hpp>

namespace parley::session {

std::optional<std::int64_t> parse_user_id(std::string_view text) {
  if (text.empty() || text.size() > 18 || text[0] == '0') return std::nullopt;
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

std::string direct_conversation(std::string_view a, std::string_view b) {
  return a < b ? fmt::format("d:{}:{}", a, b) : fmt::format("d:{}:{}", b, a);
}

std::optional<std::pair<std::string, std::string>> direct_participants(std::string_view id) {
  if (id.size() < 5 || id.substr(0, 2) != "d:") return std::nullopt;
  const auto rest = id.substr(2);
  const auto colon = rest.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto a = rest.substr(0, colon);
  const auto b = rest.substr(colon + 1);
  if (!parse_user_id(a) || !parse_user_id(b) || !(a < b)) return std::nullopt;
  return std::make_pair(std::string(a), std::string(b));
}

std::string sql_timestamp(std::string_view column) {
  return fmt::format("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", column);
}

std::size_t utf8_length(std::string_view text) {
  std::size_t n = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string message_columns(std::string_view a) {
  return fmt::format(
      "{0}.id, {0}.conversation, {0}.seq, {0}.sender_id, {0}.recipient_id, {0}.group_id, {0}.body, "
      "{0}.event_type, {1}",
      a, sql_timestamp(std::string(a) + ".created_at"));
}

StoredMessage read_message(const pqxx::row& row, int c) {
  StoredMessage m;
  m.id = row[c].as<std::int64_t>();
  m.conversation = row[c + 1].as<std::string>();
  m.seq = row[c + 2].as<std::int64_t>();
  m.sender_id = row[c + 3].as<std::int64_t>();
  if (!row[c + 4].is_null()) m.recipient_id = row[c + 4].as<std::int64_t>();
  if (!row[c + 5].is_null()) m.group_id = row[c + 5].as<std::int64_t>();
  m.body = row[c + 6].as<std::string>();
  m.event_type = row[c + 7].as<std::string>();
  m.timestamp = row[c + 8].as<std::string>();
  return m;
}

boost::json::object message_object(const StoredMessage& m, std::string_view status) {
  boost::json::object o;
  o.reserve(11);
  o["message_id"] = std::to_string(m.id);
  o["conversation"] = m.conversation;
  o["seq"] = m.seq;
  o["sender_id"] = std::to_string(m.sender_id);
  if (m.recipient_id) o["recipient_id"] = std::to_string(*m.recipient_id);
  if (m.group_id) o["group_id"] = std::to_string(*m.group_id);
  o["message"] = m.body;
  o["status"] = status;
  o["eventType"] = m.event_type;
  o["timestamp"] = m.timestamp;
  return o;
}

namespace {

void append_string(std::string& out, std::string_view text) {
  // Quoted and escaped by Boost.JSON's serializer, as json::serialize would.
  boost::json::serializer serializer;
  serializer.reset(text);
  char chunk[1024];
  while (!serializer.done()) out.append(serializer.read(chunk, sizeof chunk));
}

void append_int(std::string& out, std::int64_t value) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

void append_id(std::string& out, std::string_view key, std::int64_t id) {
  out += ",\"";
  out += key;
  out += "\":\"";
  append_int(out, id);
  out += '"';
}

}  // namespace

Frame message_event(const StoredMessage& m, std::string_view status) {
  // Written directly, once per stored message: the same text as
  // serialising message_object with "type" first (wire_test.cpp), without
  // building the object.
  std::string text;
  text.reserve(192 + m.conversation.size() + m.body.size());
  text += R"({"type":"message")";
  append_id(text, "message_id", m.id);
  text += R"(,"conversation":)";
  append_string(text, m.conversation);
  text += R"(,"seq":)";
  append_int(text, m.seq);
  append_id(text, "sender_id", m.sender_id);
  if (m.recipient_id) append_id(text, "recipient_id", *m.recipient_id);
  if (m.group_id) append_id(text, "group_id", *m.group_id);
  text += R"(,"message":)";
  append_string(text, m.body);
  text += R"(,"status":)";
  append_string(text, status);
  text += R"(,"eventType":)";
  append_string(text, m.event_type);
  text += R"(,"timestamp":)";
  append_string(text, m.timestamp);
  text += '}';
  return {std::make_shared<const std::string>(std::move(text)), "m:" + std::to_string(m.id)};
}

}  // namespace parley::session
