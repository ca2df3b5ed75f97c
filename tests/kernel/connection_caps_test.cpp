// The connection caps on their own: a place per socket from accept to close,
// one per socket however often it is moved (an upgrade keeps its place), and
// per-address counting by IPv4 address or IPv6 /64.
#include "connection_caps.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "ip_address.hpp"

namespace parley::kernel {
namespace {

using Cap = ConnectionCaps::Cap;

TEST(ConnectionCapsTest, EachSocketHoldsOnePlaceUntilItCloses) {
  ConnectionCaps caps(10, 2);
  Cap refused{};
  auto first = caps.admit("192.0.2.1", refused);
  auto second = caps.admit("192.0.2.1", refused);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_FALSE(caps.admit("192.0.2.1", refused));
  EXPECT_EQ(refused, Cap::per_address);
  EXPECT_EQ(caps.open(), 2u) << "a refused socket holds no place";
  EXPECT_TRUE(caps.admit("192.0.2.2", refused)) << "another address has its own places";
  { const ConnectionCaps::Slot closing = std::move(first); }
  EXPECT_EQ(caps.open(), 1u);
  EXPECT_TRUE(caps.admit("192.0.2.1", refused)) << "a closed socket's place is free again";
}

TEST(ConnectionCapsTest, AMovedSlotCountsOnce) {
  ConnectionCaps caps(10, 1);
  Cap refused{};
  auto accepted = caps.admit("192.0.2.1", refused);
  std::optional<ConnectionCaps::Slot> upgraded;
  upgraded.emplace(std::move(accepted));
  EXPECT_FALSE(accepted);
  EXPECT_EQ(caps.open(), 1u);
  upgraded.reset();
  EXPECT_EQ(caps.open(), 0u);
  EXPECT_TRUE(caps.admit("192.0.2.1", refused));
}

TEST(ConnectionCapsTest, TheTotalCapCountsSocketsOfEveryAddress) {
  ConnectionCaps caps(3, 100);
  Cap refused{};
  std::vector<ConnectionCaps::Slot> held;
  for (const char* address : {"192.0.2.1", "192.0.2.2", ""})
    held.push_back(caps.admit(address, refused));
  EXPECT_FALSE(caps.admit("192.0.2.9", refused));
  EXPECT_EQ(refused, Cap::total);
  EXPECT_EQ(caps.open(), 3u);
}

TEST(ConnectionCapsTest, AProxiedSocketCountsForItsClientOnceItIsKnown) {
  ConnectionCaps caps(10, 1);
  Cap refused{};
  auto first = caps.admit("", refused);  // from a trusted proxy
  auto second = caps.admit("", refused);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second) << "a proxy's sockets are not capped as one address";
  EXPECT_TRUE(caps.add_address(first, "192.0.2.7"));
  EXPECT_TRUE(caps.add_address(first, "192.0.2.8")) << "a slot counts for one address only";
  EXPECT_FALSE(caps.add_address(second, "192.0.2.7"));
  EXPECT_FALSE(second.has_address());
  EXPECT_TRUE(caps.add_address(second, "192.0.2.8"));
  { const ConnectionCaps::Slot closing = std::move(first); }
  auto third = caps.admit("", refused);
  EXPECT_TRUE(caps.add_address(third, "192.0.2.7")) << "the closed socket's client is free again";
}

TEST(AddressGroupTest, IPv4IsItselfAndIPv6IsItsSlash64) {
  EXPECT_EQ(address_group("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(address_group("::ffff:192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(address_group("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(address_group("2001:db8:1:2::9"), "2001:db8:1:2::/64");
  EXPECT_NE(address_group("2001:db8:1:3::1"), address_group("2001:db8:1:2::1"));
  EXPECT_EQ(address_group("::1"), "::/64");
  // NAT64: one IPv4 client per address.
  EXPECT_EQ(address_group("64:ff9b::c000:201"), "64:ff9b::c000:201");
  EXPECT_NE(address_group("64:ff9b:1::c000:201"), address_group("64:ff9b:1::c000:202"));
  EXPECT_EQ(address_group(""), "");
}

TEST(IsLoopbackTest, LoopbackAddressesOnly) {
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("127.3.2.1"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_TRUE(is_loopback("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback("192.0.2.1"));
  EXPECT_FALSE(is_loopback("2001:db8::1"));
  EXPECT_FALSE(is_loopback(""));
  EXPECT_FALSE(is_loopback("localhost"));
}

}  // namespace
}  // namespace parley::kernel
