#include "request_sequencer.hpp"

namespace parley::kernel {

void RequestSequencer::began() {
  std::lock_guard lock(mutex_);
  if (posted_ > 0) --posted_;
}

void RequestSequencer::finished() {
  std::lock_guard lock(mutex_);
  if (in_flight_ > 0) --in_flight_;
  start_ready();
}

void RequestSequencer::clear() {
  std::lock_guard lock(mutex_);
  waiting_.clear();
  waiting_bytes_ = 0;
}

bool RequestSequencer::may_start(std::string_view type, bool pipelined) const {
  return in_flight_ == 0 || (pipelined && in_flight_pipelined_ && type == in_flight_type_);
}

void RequestSequencer::count_start(std::string_view type, bool pipelined) {
  if (in_flight_++ == 0 || !in_flight_pipelined_ || type != in_flight_type_) {
    in_flight_type_ = type;
    in_flight_pipelined_ = pipelined;
  }
}

void RequestSequencer::start_ready() {
  while (!waiting_.empty()) {
    Job& next = waiting_.front().job;
    if (!may_start(next.type, next.pipelined)) return;
    count_start(next.type, next.pipelined);
    Job job = std::move(next);
    waiting_bytes_ -= waiting_.front().bytes;
    waiting_.pop_front();
    ++posted_;
    job.start();
  }
}

}  // namespace parley::kernel
