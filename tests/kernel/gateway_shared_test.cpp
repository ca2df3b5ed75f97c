#include "gateway_shared.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace parley::kernel::gateway_detail {
namespace {

// What ok_frame wrote before it wrote its text directly: an object with
// "type" and "re" first, then the result's members, serialised.
std::string object_form(const std::string& re, const json::object& result) {
  json::object reply{{"type", "ok"}, {"re", re}};
  for (const auto& member : result) reply[member.key()] = member.value();
  return json::serialize(reply);
}

TEST(OkFrameTest, AnEmptyResultIsTypeAndRe) {
  EXPECT_EQ(*ok_frame("7", {}), R"({"type":"ok","re":"7"})");
}

TEST(OkFrameTest, ResultMembersFollowTypeAndReAsInTheObjectForm) {
  const json::object result{{"message_id", "101"},
                            {"conversation", "d:1:2"},
                            {"seq", 3},
                            {"nested", json::object{{"list", json::array{1, "two", nullptr}}}},
                            {"text", "quote \" backslash \\ newline \n caf\xc3\xa9"}};
  const std::string re = "id \"with\" \\ escapes";
  EXPECT_EQ(*ok_frame(re, result), object_form(re, result));
  EXPECT_EQ(json::parse(*ok_frame(re, result)).at("re").as_string(), re);
}

TEST(OkFrameTest, AResultLargerThanOneChunkIsWrittenWhole) {
  json::array items;
  for (int i = 0; i < 2000; ++i) items.emplace_back("item " + std::to_string(i));
  const json::object result{{"items", items}, {"next", "cursor"}};
  EXPECT_EQ(*ok_frame("r", result), object_form("r", result));
}

TEST(OkFrameTest, AResultNamingTypeOrReHasThemReplacedOnce) {
  const json::object result{{"re", "theirs"}, {"type", "theirs"}, {"value", 1}};
  const auto parsed = json::parse(*ok_frame("mine", result)).as_object();
  EXPECT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed.at("type").as_string(), "theirs");
  EXPECT_EQ(parsed.at("re").as_string(), "theirs");
  EXPECT_EQ(*ok_frame("mine", result), object_form("mine", result));
}

}  // namespace
}  // namespace parley::kernel::gateway_detail
