// Counters and gauges a plugin adds to the kernel's /metrics (Prometheus text).
// Names are prefixed with "parley_<plugin>_" by the kernel. Every call and
// every metric is safe from any thread; add() and set() take no lock.
#pragma once

#include <string>
#include <utility>
#include <vector>

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

  // Label names and values, e.g. {{"reason", "unregistered"}}: one series of
  // the metric `name` per distinct set (name{reason="unregistered"}). Keep
  // the values to a small, fixed set (a reason, not a user id).
  using Labels = std::vector<std::pair<std::string, std::string>>;
  virtual Counter& counter(const std::string& name, const std::string& help,
                           const Labels& labels) = 0;
  virtual Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels) = 0;
};

}  // namespace parley
