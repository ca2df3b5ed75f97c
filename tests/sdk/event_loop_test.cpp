// parley::EventLoop, the SDK's thread for a plugin's own I/O and timers:
// tasks run in order on one thread that is not the caller's, deadlines wake
// it, and stop() runs what was posted before it.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <parley/event_loop.hpp>

namespace {

using namespace std::chrono_literals;

class WallClock : public parley::Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
};

TEST(EventLoopTest, TasksRunInPostOrderOnTheLoopsOwnThread) {
  WallClock clock;
  parley::EventLoop loop(clock);
  std::vector<int> seen;
  std::thread::id ran_on;
  loop.start([] { return std::nullopt; }, [] {});
  for (int i = 0; i < 1000; ++i) {
    loop.post([&, i] {
      seen.push_back(i);
      ran_on = std::this_thread::get_id();
    });
  }
  loop.stop();  // runs what was posted, then joins
  ASSERT_EQ(seen.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], i);
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(EventLoopTest, ADeadlineWakesTheLoopAndRepeats) {
  WallClock clock;
  parley::EventLoop loop(clock);
  std::mutex mutex;
  std::condition_variable woke;
  int ticks = 0;
  auto next = clock.now() + 5ms;
  // A repeating timer: every wake moves the deadline on.
  loop.start([&]() -> std::optional<std::chrono::system_clock::time_point> { return next; },
             [&] {
               if (clock.now() < next) return;
               next = clock.now() + 5ms;
               std::lock_guard lock(mutex);
               ++ticks;
               woke.notify_all();
             });
  std::unique_lock lock(mutex);
  EXPECT_TRUE(woke.wait_for(lock, 10s, [&] { return ticks >= 3; })) << "the timer did not repeat";
  lock.unlock();
  loop.stop();
}

TEST(EventLoopTest, PostsAfterStopAreDropped) {
  WallClock clock;
  parley::EventLoop loop(clock);
  loop.start([] { return std::nullopt; }, [] {});
  loop.stop();
  std::atomic<bool> ran{false};
  loop.post([&] { ran = true; });
  EXPECT_FALSE(ran.load());
}

}  // namespace
