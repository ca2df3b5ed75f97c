// The request sequencer: requests start in arrival order; a run of one
// pipelined type overlaps; the caller starts a request itself only when every
// earlier one has begun, so a request it runs at once never overtakes one
// that was handed to another thread and has not run yet.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "request_sequencer.hpp"

namespace parley::kernel {
namespace {

using Arrival = RequestSequencer::Arrival;

class RequestSequencerTest : public ::testing::Test {
 protected:
  // A request arrives; a queued one records its name when it is started.
  Arrival arrive(const std::string& name, const std::string& type, bool pipelined) {
    return sequencer_.arrive(type, pipelined, [&] {
      return RequestSequencer::Job{type, pipelined, [this, name] { started_.push_back(name); }};
    });
  }

  RequestSequencer sequencer_{4};
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

}  // namespace
}  // namespace parley::kernel
