#include "subscriptions.hpp"

#include <gtest/gtest.h>

namespace parley::presence {
namespace {

using Ids = std::unordered_set<ConnectionId>;

TEST(SubscriptionsTest, AChangeFindsOnlyItsWatchers) {
  Subscriptions subs(10);
  ASSERT_TRUE(subs.add(1, "a", {"b", "c"}));
  ASSERT_TRUE(subs.add(2, "d", {"b"}));
  EXPECT_EQ(subs.watchers("b"), (Ids{1, 2}));
  EXPECT_EQ(subs.watchers("c"), (Ids{1}));
  EXPECT_TRUE(subs.watchers("a").empty());
  EXPECT_EQ(subs.size(), 3u);
}

TEST(SubscriptionsTest, CapCountsDistinctTargetsAndRefusesWhole) {
  Subscriptions subs(3);
  ASSERT_TRUE(subs.add(1, "a", {"b", "c"}));
  EXPECT_TRUE(subs.add(1, "a", {"b", "c", "d"})) << "b and c are held already";
  EXPECT_FALSE(subs.add(1, "a", {"e"}));
  EXPECT_TRUE(subs.watchers("e").empty());
  EXPECT_EQ(subs.size(), 3u);
  subs.remove(1, {"b"});
  EXPECT_TRUE(subs.add(1, "a", {"e"}));
  EXPECT_TRUE(subs.add(2, "a", {"x", "y", "z"})) << "the cap is per connection";
}

TEST(SubscriptionsTest, ClosingAConnectionEndsItsWatchesOnly) {
  Subscriptions subs(10);
  subs.add(1, "a", {"b"});
  subs.add(2, "a", {"b", "c"});
  subs.drop_connection(2);
  EXPECT_EQ(subs.watchers("b"), (Ids{1}));
  EXPECT_TRUE(subs.watchers("c").empty());
  EXPECT_EQ(subs.size(), 1u);
  subs.drop_subscriber("a");
  EXPECT_EQ(subs.size(), 0u);
  EXPECT_TRUE(subs.watchers("b").empty());
}

TEST(SubscriptionsTest, LoggingOutEndsOnlyTheWatchesOfWhoLoggedOut) {
  Subscriptions subs(10);
  subs.add(1, "a", {"b"});
  subs.drop_connection_of(1, "z");  // a late event about an earlier user
  EXPECT_EQ(subs.watchers("b"), (Ids{1}));
  subs.drop_connection_of(1, "a");
  EXPECT_TRUE(subs.watchers("b").empty());
  EXPECT_EQ(subs.size(), 0u);
}

TEST(SubscriptionsTest, AConnectionLoggedInAsSomeoneElseStartsAfresh) {
  Subscriptions subs(10);
  subs.add(1, "a", {"b"});
  subs.add(1, "z", {"c"});
  EXPECT_TRUE(subs.watchers("b").empty());
  EXPECT_EQ(subs.watchers("c"), (Ids{1}));
}

TEST(SubscriptionsTest, BetweenFindsWatchesInBothDirections) {
  Subscriptions subs(10);
  subs.add(1, "a", {"b", "c"});
  subs.add(2, "b", {"a"});
  subs.add(3, "c", {"a"});
  const auto found = subs.between("a", {"b"});
  ASSERT_EQ(found.size(), 2u);
  for (const auto& watch : found) {
    EXPECT_TRUE((watch.connection == 1 && watch.subscriber == "a" && watch.target == "b") ||
                (watch.connection == 2 && watch.subscriber == "b" && watch.target == "a"));
  }
}

}  // namespace
}  // namespace parley::presence
