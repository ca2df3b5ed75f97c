#include "request_sequencer.hpp"

namespace parley::kernel {

bool RequestSequencer::arrive(Job job) {
  std::lock_guard lock(mutex_);
  if (waiting_.size() >= max_waiting_) return false;
  waiting_.push_back(std::move(job));
  start_ready();
  return true;
}

void RequestSequencer::finished() {
  std::lock_guard lock(mutex_);
  if (in_flight_ > 0) --in_flight_;
  start_ready();
}

void RequestSequencer::clear() {
  std::lock_guard lock(mutex_);
  waiting_.clear();
}

void RequestSequencer::start_ready() {
  while (!waiting_.empty()) {
    Job& next = waiting_.front();
    const bool joins_run = next.pipelined && in_flight_pipelined_ && next.type == in_flight_type_;
    if (in_flight_ > 0 && !joins_run) return;
    ++in_flight_;
    if (!joins_run) {
      in_flight_type_ = next.type;
      in_flight_pipelined_ = next.pipelined;
    }
    Job job = std::move(next);
    waiting_.pop_front();
    job.start();
  }
}

}  // namespace parley::kernel
