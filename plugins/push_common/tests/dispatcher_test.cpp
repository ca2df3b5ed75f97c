// The dispatcher's text helpers.
#include "dispatcher.hpp"

#include <gtest/gtest.h>

namespace parley::push {
namespace {

TEST(SnakeCase, TurnsServiceErrorNamesIntoMetricNameParts) {
  EXPECT_EQ(snake_case("BadDeviceToken"), "bad_device_token");
  EXPECT_EQ(snake_case("QUOTA_EXCEEDED"), "quota_exceeded");
  EXPECT_EQ(snake_case("unregistered"), "unregistered");
  EXPECT_EQ(snake_case("http 503"), "http_503");
  EXPECT_EQ(snake_case("!!"), "unknown");
}

TEST(TruncateUtf8, CutsOnACharacterBoundaryAndMarksTheCut) {
  EXPECT_EQ(truncate_utf8("short", 10), "short");
  EXPECT_EQ(truncate_utf8("exactly10!", 10), "exactly10!");
  EXPECT_EQ(truncate_utf8("0123456789ab", 10), "0123456\xE2\x80\xA6");
  // "é" is two bytes: a cut inside it backs off to before it.
  EXPECT_EQ(truncate_utf8("abcde\xC3\xA9ghij", 9), "abcde\xE2\x80\xA6");
  EXPECT_EQ(truncate_utf8("abcde\xC3\xA9ghij", 10), "abcde\xC3\xA9\xE2\x80\xA6");
  EXPECT_EQ(truncate_utf8("abcdefgh", 2), "");
}

}  // namespace
}  // namespace parley::push
