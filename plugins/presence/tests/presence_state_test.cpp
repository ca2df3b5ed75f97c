// The timing rules of presence, driven by a manual clock: no sleeping.
#include "presence_state.hpp"

#include <gtest/gtest.h>

namespace parley::presence {
namespace {

using namespace std::chrono_literals;

class ManualClock : public Clock {
 public:
  TimePoint now() const override { return now_; }
  void advance(std::chrono::milliseconds by) { now_ += by; }

 private:
  TimePoint now_ = std::chrono::system_clock::from_time_t(1'800'000'000);
};

class PresenceStateTest : public ::testing::Test {
 protected:
  // Logs the user in: the kernel reports the connection and, at once, activity.
  std::vector<Transition> log_in(const std::string& user) {
    auto out = state_.set_connected(user, true, std::nullopt);
    auto more = state_.activity(user, clock_.now(), true);
    out.insert(out.end(), more.begin(), more.end());
    return out;
  }
  // Moves the clock and applies what fell due, as the plugin's thread does.
  std::vector<Transition> wait(std::chrono::milliseconds by) {
    clock_.advance(by);
    return state_.tick();
  }

  ManualClock clock_;
  PresenceState state_{clock_, Timing{.offline_after = 300s, .grace = 10s}};
};

TEST_F(PresenceStateTest, LoginMakesTheUserOnlineOnce) {
  const auto changes = log_in("1");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user_id, "1");
  EXPECT_TRUE(changes[0].online);
  EXPECT_EQ(changes[0].last_active, clock_.now());
  EXPECT_TRUE(state_.online("1"));
}

TEST_F(PresenceStateTest, ActivityBeforeTheConnectionEventAlsoCounts) {
  // Events of different names arrive in any order; the gateway says connected.
  auto changes = state_.activity("1", clock_.now(), true);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].online);
  EXPECT_TRUE(state_.set_connected("1", true, std::nullopt).empty());
}

TEST_F(PresenceStateTest, ConnectionWithAKnownLastFrameIsOnlineAtOnce) {
  const auto changes = state_.set_connected("1", true, clock_.now());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].online);
}

TEST_F(PresenceStateTest, ConnectionWithoutActivityIsNotOnline) {
  EXPECT_TRUE(state_.set_connected("1", true, std::nullopt).empty());
  EXPECT_FALSE(state_.online("1"));
  EXPECT_FALSE(state_.next_deadline());
}

TEST_F(PresenceStateTest, ManyFramesGiveOneEvent) {
  EXPECT_EQ(log_in("1").size(), 1u);
  for (int i = 0; i < 100; ++i) {
    clock_.advance(1s);
    EXPECT_TRUE(state_.activity("1", clock_.now(), true).empty());
    EXPECT_TRUE(state_.tick().empty());
  }
}

TEST_F(PresenceStateTest, SilenceLongerThanOfflineAfterGoesOfflineWithTheConnectionOpen) {
  log_in("1");
  const auto login_time = clock_.now();
  EXPECT_EQ(state_.next_deadline(), login_time + 300s);
  EXPECT_TRUE(wait(299s).empty());
  EXPECT_TRUE(state_.online("1"));
  const auto changes = wait(1s);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].online);
  EXPECT_EQ(changes[0].last_active, login_time);
  EXPECT_FALSE(state_.next_deadline()) << "nothing left to watch for an offline user";
}

TEST_F(PresenceStateTest, ActivityPushesTheOfflineDeadlineBack) {
  log_in("1");
  clock_.advance(200s);
  state_.activity("1", clock_.now(), true);
  EXPECT_TRUE(wait(200s).empty());
  EXPECT_EQ(wait(100s).size(), 1u);
}

TEST_F(PresenceStateTest, FirstActivityAfterSilenceIsOnlineAtOnce) {
  log_in("1");
  ASSERT_EQ(wait(301s).size(), 1u);
  const auto changes = state_.activity("1", clock_.now(), true);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].online);
  EXPECT_EQ(changes[0].last_active, clock_.now());
}

TEST_F(PresenceStateTest, LastConnectionClosedGoesOfflineAfterTheGracePeriod) {
  log_in("1");
  EXPECT_TRUE(state_.set_connected("1", false, std::nullopt).empty());
  EXPECT_TRUE(state_.online("1"));
  EXPECT_TRUE(wait(9s).empty());
  const auto changes = wait(1s);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].online);
}

TEST_F(PresenceStateTest, ReconnectWithinTheGracePeriodCausesNoEvent) {
  log_in("1");
  state_.set_connected("1", false, std::nullopt);
  clock_.advance(5s);
  EXPECT_TRUE(log_in("1").empty());
  EXPECT_TRUE(wait(60s).empty());
  EXPECT_TRUE(state_.online("1"));
  // The silence rule still holds for the new connection.
  EXPECT_EQ(wait(300s).size(), 1u);
}

TEST_F(PresenceStateTest, ReconnectAfterTheGracePeriodIsOnlineAgain) {
  log_in("1");
  state_.set_connected("1", false, std::nullopt);
  ASSERT_EQ(wait(10s).size(), 1u);
  const auto changes = log_in("1");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].online);
}

TEST_F(PresenceStateTest, SilenceEndsTheGracePeriodEarly) {
  log_in("1");
  clock_.advance(295s);
  state_.set_connected("1", false, std::nullopt);
  EXPECT_EQ(state_.next_deadline(), clock_.now() + 5s);
  EXPECT_EQ(wait(5s).size(), 1u);
}

TEST_F(PresenceStateTest, ActivityReportedAfterTheConnectionWentAwayDoesNotBringItBack) {
  log_in("1");
  state_.set_connected("1", false, std::nullopt);
  ASSERT_EQ(wait(10s).size(), 1u);
  const auto late = clock_.now() - 1s;
  EXPECT_TRUE(state_.activity("1", late, false).empty());
  EXPECT_FALSE(state_.online("1"));
  EXPECT_EQ(state_.last_active("1"), late);
}

TEST_F(PresenceStateTest, UsersGoOfflineIndependentlyAndInDeadlineOrder) {
  log_in("1");
  clock_.advance(100s);
  log_in("2");
  auto first = wait(200s);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].user_id, "1");
  auto second = wait(100s);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].user_id, "2");
}

TEST_F(PresenceStateTest, ChangedLastActiveIsTakenOnceWithItsNewestValue) {
  log_in("1");
  clock_.advance(1s);
  state_.activity("1", clock_.now(), true);
  log_in("2");
  auto changed = state_.take_changed();
  ASSERT_EQ(changed.size(), 2u);
  EXPECT_EQ(changed[0], std::make_pair(std::string("1"), clock_.now()));
  EXPECT_TRUE(state_.take_changed().empty());
  // An older activity reported late changes nothing.
  state_.activity("1", clock_.now() - 5s, true);
  EXPECT_TRUE(state_.take_changed().empty());
}

TEST_F(PresenceStateTest, FailedWritesAreTakenAgain) {
  log_in("1");
  auto changed = state_.take_changed();
  state_.restore_changed(changed);
  EXPECT_EQ(state_.take_changed(), changed);
}

TEST_F(PresenceStateTest, StoredLastActiveIsKnownAndLosesToNewerActivity) {
  EXPECT_FALSE(state_.known("1"));
  state_.load("1", std::nullopt);
  EXPECT_TRUE(state_.known("1"));
  EXPECT_FALSE(state_.last_active("1"));

  const auto stored = clock_.now() - 1h;
  state_.load("2", stored);
  EXPECT_EQ(state_.last_active("2"), stored);
  log_in("2");
  state_.load("2", stored);
  EXPECT_EQ(state_.last_active("2"), clock_.now());
  EXPECT_FALSE(state_.online("1"));
}

TEST_F(PresenceStateTest, AStoredOldLastActiveDoesNotMakeAConnectedUserOnline) {
  state_.load("1", clock_.now() - 1h);
  EXPECT_TRUE(state_.set_connected("1", true, std::nullopt).empty());
  EXPECT_FALSE(state_.online("1"));
}

}  // namespace
}  // namespace parley::presence
