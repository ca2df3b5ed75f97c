// Time as plugins see it. The kernel passes the system clock; tests drive a
// manual one, so expiry and timeouts are testable without sleeping.
#pragma once

#include <chrono>

namespace parley {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, for timestamps that are stored or sent to clients.
  virtual std::chrono::system_clock::time_point now() const = 0;
};

}  // namespace parley
