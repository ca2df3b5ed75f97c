#include "wire.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace parley::session {
namespace {

namespace json = boost::json;

// The object form with "type" first, serialised: what message_event wrote
// before it wrote its text directly.
std::string serialised_object_form(const StoredMessage& m, std::string_view status) {
  json::object event{{"type", "message"}};
  for (auto& field : message_object(m, status)) event[field.key()] = field.value();
  return json::serialize(event);
}

StoredMessage direct_message() {
  StoredMessage m;
  m.id = 9007199254740993;  // past 2^53: sent as a string, so no client rounds it
  m.conversation = "d:12:34";
  m.seq = 42;
  m.sender_id = 12;
  m.recipient_id = 34;
  m.body = "plain";
  m.timestamp = "2026-11-30T20:00:00.123Z";
  return m;
}

TEST(WireTest, MessageEventIsTheObjectFormsText) {
  const auto m = direct_message();
  const Frame frame = message_event(m, "sent");
  EXPECT_EQ(*frame.text, serialised_object_form(m, "sent"));
  EXPECT_EQ(frame.dedupe_key, "m:9007199254740993");
  EXPECT_EQ(*frame.text,
            R"({"type":"message","message_id":"9007199254740993","conversation":"d:12:34",)"
            R"("seq":42,"sender_id":"12","recipient_id":"34","message":"plain","status":"sent",)"
            R"("eventType":"user","timestamp":"2026-11-30T20:00:00.123Z"})");
}

TEST(WireTest, MessageEventEscapesWhatJsonMustEscape) {
  auto m = direct_message();
  m.body = "say \"hi\"\\ \n\t\r\b\f \x01 \x1f / caf\xc3\xa9 \xf0\x9f\x98\x80";
  const Frame frame = message_event(m, "sent");
  EXPECT_EQ(*frame.text, serialised_object_form(m, "sent"));
  EXPECT_EQ(json::parse(*frame.text).at("message").as_string(), m.body);
}

TEST(WireTest, GroupMessageEventHasGroupIdAndNoRecipient) {
  auto m = direct_message();
  m.conversation = "g:77";
  m.recipient_id.reset();
  m.group_id = 77;
  m.event_type = "system";
  const Frame frame = message_event(m, "read");
  EXPECT_EQ(*frame.text, serialised_object_form(m, "read"));
  const auto parsed = json::parse(*frame.text).as_object();
  EXPECT_EQ(parsed.at("group_id").as_string(), "77");
  EXPECT_FALSE(parsed.contains("recipient_id"));
}

TEST(WireTest, LongBodiesAreWrittenWhole) {
  auto m = direct_message();
  m.body.assign(5000, 'x');
  m.body += "\"end\"";
  const Frame frame = message_event(m, "sent");
  EXPECT_EQ(*frame.text, serialised_object_form(m, "sent"));
}

}  // namespace
}  // namespace parley::session
