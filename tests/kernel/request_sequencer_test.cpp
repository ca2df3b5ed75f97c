// The request sequencer: requests start in arrival order; a run of one
// pipelined type overlaps; the caller starts a request itself only when every
// earlier one has begun, so a request it runs at once never overtakes one
// that was handed to another thread and has not run yet. The last test runs
// it with real threads (also under ThreadSanitizer).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "request_sequencer.hpp"

namespace parley::kernel {
namespace {

using Arrival = RequestSequencer::Arrival;

class RequestSequencerTest : public ::testing::Test {
 protected:
  // A request arrives; a queued one records its name when it is started.
  Arrival arrive(const std::string& name, const std::string& type, bool pipelined,
                 std::size_t bytes = 100) {
    return sequencer_.arrive(type, pipelined, bytes, [&] {
      return RequestSequencer::Job{type, pipelined, [this, name] { started_.push_back(name); }};
    });
  }

  RequestSequencer sequencer_{4, 1000};
  std::vector<std::string> started_;
};

TEST_F(RequestSequencerTest, ARequestWaitsForTheOneBeforeIt) {
  EXPECT_EQ(arrive("login", "login", false), Arrival::start_now);
  EXPECT_EQ(arrive("history", "history", false), Arrival::queued);
  EXPECT_EQ(arrive("send", "send", true), Arrival::queued);
  EXPECT_TRUE(started_.empty());

  sequencer_.finished();  // login answered
  EXPECT_EQ(started_, std::vector<std::string>{"history"});
  sequencer_.began();
  sequencer_.finished();  // history answered
  EXPECT_EQ(started_, (std::vector<std::string>{"history", "send"}));
}

TEST_F(RequestSequencerTest, ARunOfOnePipelinedTypeOverlapsAndHoldsBackTheNextType) {
  EXPECT_EQ(arrive("send 1", "send", true), Arrival::start_now);
  EXPECT_EQ(arrive("send 2", "send", true), Arrival::start_now);
  EXPECT_EQ(arrive("mark", "mark", false), Arrival::queued);
  // Behind the mark, a send does not join the run in flight.
  EXPECT_EQ(arrive("send 3", "send", true), Arrival::queued);

  sequencer_.finished();
  EXPECT_TRUE(started_.empty());
  sequencer_.finished();  // both sends answered
  EXPECT_EQ(started_, std::vector<std::string>{"mark"});
  sequencer_.began();
  sequencer_.finished();
  EXPECT_EQ(started_, (std::vector<std::string>{"mark", "send 3"}));
}

TEST_F(RequestSequencerTest,
       ARequestIsNotStartedAtOnceWhileAnEarlierOneWasHandedOffAndHasNotBegun) {
  EXPECT_EQ(arrive("login", "login", false), Arrival::start_now);
  EXPECT_EQ(arrive("send 1", "send", true), Arrival::queued);
  sequencer_.finished();  // login answered: send 1 is handed off, not yet begun
  ASSERT_EQ(started_, std::vector<std::string>{"send 1"});

  // send 2 joins the run, but through the same hand-off, behind send 1.
  EXPECT_EQ(arrive("send 2", "send", true), Arrival::queued);
  EXPECT_EQ(started_, (std::vector<std::string>{"send 1", "send 2"}));

  sequencer_.began();  // send 1 runs
  EXPECT_EQ(arrive("send 3", "send", true), Arrival::queued);
  sequencer_.began();  // send 2 runs
  sequencer_.began();  // send 3 runs
  // Every earlier request has begun: the next one may start at once.
  EXPECT_EQ(arrive("send 4", "send", true), Arrival::start_now);
  EXPECT_EQ(started_, (std::vector<std::string>{"send 1", "send 2", "send 3"}));
}

// Attack review, finding 7: 256 waiting requests padded to 64 KiB each
// pinned about 14 MiB per connection. The waiting frames' bytes are bounded.
TEST_F(RequestSequencerTest, RefusesPastItsWaitingBytesAndCountsThemFreeOnceStarted) {
  EXPECT_EQ(arrive("login", "login", false), Arrival::start_now);
  EXPECT_EQ(arrive("padded 1", "history", false, 600), Arrival::queued);
  EXPECT_EQ(arrive("padded 2", "history", false, 600), Arrival::refused);
  EXPECT_EQ(arrive("fits", "history", false, 400), Arrival::queued);
  EXPECT_EQ(arrive("one byte over", "history", false, 1), Arrival::refused);

  sequencer_.finished();  // login answered: "padded 1" starts and waits no more
  EXPECT_EQ(started_, std::vector<std::string>{"padded 1"});
  sequencer_.began();
  EXPECT_EQ(arrive("padded 3", "history", false, 600), Arrival::queued);
  EXPECT_EQ(arrive("over again", "history", false, 1), Arrival::refused);

  sequencer_.clear();
  EXPECT_EQ(arrive("after clear", "history", false, 1000), Arrival::queued)
      << "cleared requests hold no bytes";
}

TEST_F(RequestSequencerTest, RefusesPastItsWaitingLimitAndForgetsTheWaitingOnClear) {
  EXPECT_EQ(arrive("login", "login", false), Arrival::start_now);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(arrive("history " + std::to_string(i), "history", false), Arrival::queued);
  }
  EXPECT_EQ(arrive("one too many", "history", false), Arrival::refused);

  sequencer_.clear();
  sequencer_.finished();  // login answered: nothing is left to start
  EXPECT_TRUE(started_.empty());
  EXPECT_EQ(arrive("after", "history", false), Arrival::start_now);
}

// As in the gateway: requests arrive on the connection's strand, which
// also runs the ones started at once and the ones handed off later; answers
// come from other threads in any order. Every request must begin in arrival
// order. (Whether sends overlap here depends on timing, so the deterministic
// test above checks that.)
TEST(RequestSequencerThreadsTest, RequestsBeginInArrivalOrderWhileAnswersComeFromOtherThreads) {
  constexpr int kRequests = 3000;
  boost::asio::io_context strand_context;  // one thread: the connection's strand
  boost::asio::thread_pool answerers(3);
  RequestSequencer sequencer(kRequests);
  std::vector<int> began;  // only touched on the strand
  std::atomic<int> answered{0};

  auto begin = [&](int n) {
    began.push_back(n);
    boost::asio::post(answerers, [&] {
      sequencer.finished();
      ++answered;
    });
  };
  std::thread strand_thread([&] {
    auto work = boost::asio::make_work_guard(strand_context);
    while (answered.load() < kRequests) strand_context.run_one_for(std::chrono::milliseconds(10));
  });
  // The socket: requests arrive one by one while the strand also runs what
  // was handed off and answers come back.
  for (int n = 0; n < kRequests; ++n) {
    // Mostly sends, pipelined; every 25th request is a mark, which waits.
    const bool is_send = n % 25 != 0;
    const std::string type = is_send ? "send" : "mark";
    boost::asio::post(strand_context, [&, n, type, is_send] {
      const auto arrival = sequencer.arrive(type, is_send, 100, [&] {
        return RequestSequencer::Job{type, is_send, [&, n] {
                                       boost::asio::post(strand_context, [&, n] {
                                         sequencer.began();
                                         begin(n);
                                       });
                                     }};
      });
      ASSERT_NE(arrival, Arrival::refused);
      if (arrival == Arrival::start_now) begin(n);
    });
    std::this_thread::yield();
  }
  strand_thread.join();
  answerers.join();

  std::vector<int> expected(kRequests);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(began, expected);
}

}  // namespace
}  // namespace parley::kernel
