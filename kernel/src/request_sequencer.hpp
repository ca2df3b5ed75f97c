// Starts the requests of one connection in the order they arrived, so that
// they take effect in that order (docs/protocol.md, "Order"), while letting
// a run of requests of one pipelined type overlap (RequestOptions::pipelined).
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

#include <boost/container/devector.hpp>

namespace parley::kernel {

class RequestSequencer {
 public:
  struct Job {
    std::string type;
    bool pipelined = false;
    // Hands the request to the thread that runs it. Called with the
    // sequencer's lock held, so it must only post (never run the handler
    // inline): posting under the lock is what keeps the start order.
    std::function<void()> start;
  };

  explicit RequestSequencer(std::size_t max_waiting) : max_waiting_(max_waiting) {}

  // Starts `job` now if nothing earlier blocks it, else queues it. Returns
  // false, without queuing, when max_waiting jobs are already queued.
  bool arrive(Job job);
  // A started job was answered: starts what it held back.
  void finished();
  // Forgets the queued jobs (the connection closed).
  void clear();

 private:
  void start_ready();  // with mutex_ held

  const std::size_t max_waiting_;
  std::mutex mutex_;
  // Holds no memory while empty (std::deque always holds a block): one per
  // connection, and most connections are idle.
  boost::container::devector<Job> waiting_;
  std::size_t in_flight_ = 0;
  std::string in_flight_type_;  // the type of the run in flight
  bool in_flight_pipelined_ = false;
};

}  // namespace parley::kernel
