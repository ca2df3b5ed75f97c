// The in-memory counters behind the session plugin's login and registration
// limits, in-process.
#include "attempt_limiter.hpp"

#include <gtest/gtest.h>

namespace parley::session {
namespace {

using namespace std::chrono_literals;

const AttemptLimiter::Time kStart{std::chrono::hours(1000)};

TEST(SessionAttemptLimiter, CountsUpToTheLimitPerKeyAndWindow) {
  AttemptLimiter limiter(2, 60s);
  EXPECT_TRUE(limiter.try_record("a", kStart));
  EXPECT_TRUE(limiter.try_record("a", kStart + 1s));
  EXPECT_FALSE(limiter.try_record("a", kStart + 2s));
  EXPECT_TRUE(limiter.try_record("b", kStart + 2s));
  // A new window starts afresh.
  EXPECT_TRUE(limiter.try_record("a", kStart + 60s));
}

TEST(SessionAttemptLimiter, AReleasedAttemptNoLongerCounts) {
  AttemptLimiter limiter(1, 60s);
  ASSERT_TRUE(limiter.try_record("a", kStart));
  limiter.release("a", kStart);
  EXPECT_TRUE(limiter.try_record("a", kStart + 1s));
  EXPECT_FALSE(limiter.try_record("a", kStart + 2s));
}

TEST(SessionAttemptLimiter, AReleaseFromAnEndedWindowLeavesTheNewOneAlone) {
  AttemptLimiter limiter(1, 60s);
  ASSERT_TRUE(limiter.try_record("a", kStart));
  ASSERT_TRUE(limiter.try_record("a", kStart + 61s));
  limiter.release("a", kStart);
  EXPECT_FALSE(limiter.try_record("a", kStart + 62s));
}

TEST(SessionAddressLimitKey, AnIPv6AddressStandsForItsSlash64) {
  EXPECT_EQ(address_limit_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(address_limit_key("2001:db8:1:2::1"), address_limit_key("2001:db8:1:2:ffff::9"));
  EXPECT_NE(address_limit_key("2001:db8:1:2::1"), address_limit_key("2001:db8:1:3::1"));
  // NAT64: one IPv4 client per address.
  EXPECT_EQ(address_limit_key("64:ff9b::c000:201"), "64:ff9b::c000:201");
  EXPECT_NE(address_limit_key("64:ff9b::c000:201"), address_limit_key("64:ff9b::c000:202"));
  EXPECT_EQ(address_limit_key("::1"), "::/64");
}

TEST(SessionAddressLimitKey, OtherAddressesAreTheirOwnKey) {
  EXPECT_EQ(address_limit_key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(address_limit_key("not:an address"), "not:an address");
  EXPECT_EQ(address_limit_key(""), "");
}

}  // namespace
}  // namespace parley::session
