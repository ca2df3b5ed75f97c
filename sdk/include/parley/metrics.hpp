// Counters and gauges a plugin adds to the kernel's /metrics (Prometheus text).
// Names are prefixed with "parley_<plugin>_" by the kernel.
#pragma once

#include <string>

namespace parley {

class Counter {
 public:
  virtual ~Counter() = default;
  virtual void add(double amount = 1) = 0;
};

class Gauge {
 public:
  virtual ~Gauge() = default;
  virtual void set(double value) = 0;
  virtual void add(double amount) = 0;
};

class Metrics {
 public:
  virtual ~Metrics() = default;
  // The same name returns the same metric. References stay valid for the
  // kernel's lifetime.
  virtual Counter& counter(const std::string& name, const std::string& help) = 0;
  virtual Gauge& gauge(const std::string& name, const std::string& help) = 0;
};

}  // namespace parley
