// Starts the requests of one connection in the order they arrived, so that
// they take effect in that order (docs/protocol.md, "Order"), while letting
// a run of requests of one pipelined type overlap (RequestOptions::pipelined).
#pragma once

#include <cstddef>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/container/devector.hpp>

namespace parley::kernel {

class RequestSequencer {
 public:
  struct Job {
    std::string type;
    bool pipelined = false;
    // Hands the request to the thread that runs it. Called with the
    // sequencer's lock held, so it must only post (never run the handler
    // inline): posting under the lock is what keeps the start order. What
    // it posts calls began() before anything else.
    std::function<void()> start;
  };

  enum class Arrival {
    start_now,  // counted as started: the caller starts it (see arrive)
    queued,     // its Job starts when its turn comes
    refused,    // max_waiting jobs, or max_waiting_bytes, already wait; nothing was queued
  };

  // At most `max_waiting` requests wait, holding at most `max_waiting_bytes`
  // of frames between them (a count alone lets padded requests pin
  // megabytes per connection).
  RequestSequencer(std::size_t max_waiting,
                   std::size_t max_waiting_bytes = std::numeric_limits<std::size_t>::max())
      : max_waiting_(max_waiting), max_waiting_bytes_(max_waiting_bytes) {}

  // A request of `type`, in a frame of `bytes`, arrived; called on its connection's strand, one
  // arrival at a time. When nothing earlier blocks it and every earlier
  // request has begun, it may start at once: the common case costs no Job
  // and no hand-off. The caller then runs it on that strand, or posts it to
  // a strand that keeps post order. Otherwise make_job() builds the Job that
  // is queued.
  template <class MakeJob>
  Arrival arrive(std::string_view type, bool pipelined, std::size_t bytes, MakeJob&& make_job) {
    std::lock_guard lock(mutex_);
    if (waiting_.empty() && posted_ == 0 && may_start(type, pipelined)) {
      count_start(type, pipelined);
      return Arrival::start_now;
    }
    if (waiting_.size() >= max_waiting_ || bytes > max_waiting_bytes_ - waiting_bytes_) {
      return Arrival::refused;
    }
    waiting_.push_back(Waiting{make_job(), bytes});
    waiting_bytes_ += bytes;
    start_ready();
    return Arrival::queued;
  }
  // What a queued Job posted is beginning to run.
  void began();
  // A started job was answered: starts what it held back.
  void finished();
  // Forgets the queued jobs (the connection closed).
  void clear();

 private:
  // With mutex_ held.
  bool may_start(std::string_view type, bool pipelined) const;
  void count_start(std::string_view type, bool pipelined);
  void start_ready();

  const std::size_t max_waiting_;
  const std::size_t max_waiting_bytes_;
  std::mutex mutex_;
  // Holds no memory while empty (std::deque always holds a block): one per
  // connection, and most connections are idle.
  // A queued job and the size of its request's frame (what it holds while
  // it waits: its parsed fields).
  struct Waiting {
    Job job;
    std::size_t bytes;
  };
  boost::container::devector<Waiting> waiting_;
  std::size_t waiting_bytes_ = 0;  // the bytes of the jobs in waiting_
  std::size_t in_flight_ = 0;
  std::size_t posted_ = 0;      // jobs posted by start_ready() that have not begun
  std::string in_flight_type_;  // the type of the run in flight
  bool in_flight_pipelined_ = false;
};

}  // namespace parley::kernel
