// Counters, gauges and histograms rendered in the Prometheus text exposition
// format 0.0.4 at GET /metrics.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "parley/metrics.hpp"

namespace parley::kernel {

class CounterMetric : public Counter {
 public:
  void add(double amount = 1) override { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class GaugeMetric : public Gauge {
 public:
  void set(double value) override { value_.store(value, std::memory_order_relaxed); }
  void add(double amount) override { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class HistogramMetric {
 public:
  explicit HistogramMetric(std::vector<double> bounds);
  void observe(double value);
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // one per bound, plus +Inf
  std::atomic<double> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

class MetricsRegistry {
 public:
  // `labels` is rendered text such as `code="bad_request"` (empty for none).
  // `owner` is who registers the name ("" for the kernel): a name belongs to
  // one owner, so a plugin cannot reach a kernel metric, or another
  // plugin's, whatever its name.
  CounterMetric& counter(const std::string& name, const std::string& help,
                         const std::string& labels = "", const std::string& owner = "");
  GaugeMetric& gauge(const std::string& name, const std::string& help,
                     const std::string& labels = "", const std::string& owner = "");
  HistogramMetric& histogram(const std::string& name, const std::string& help,
                             const std::string& labels, const std::vector<double>& bounds);
  std::string render() const;
  // Keeps `name` for the kernel, which registers it later: a plugin that
  // tries first is refused (at its start, not when the kernel gets there).
  void reserve(const std::string& name);

 private:
  struct Family {
    std::string help;
    std::string type;
    std::string owner;
    std::map<std::string, std::unique_ptr<CounterMetric>> counters;
    std::map<std::string, std::unique_ptr<GaugeMetric>> gauges;
    std::map<std::string, std::unique_ptr<HistogramMetric>> histograms;
  };
  Family& family(const std::string& name, const std::string& help, const std::string& type,
                 const std::string& owner = "");

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
  std::set<std::string> reserved_;
};

// The parley::Metrics a plugin sees: names prefixed with parley_<plugin>_.
// What a plugin passes is checked: a name or label that Prometheus cannot
// parse would make the whole /metrics page unreadable to a scraper.
class PluginMetrics : public Metrics {
 public:
  // Prometheus label text: name="value", sorted by name (one series per
  // label set, whatever the order given), values with \\, " and newlines
  // escaped. Throws std::invalid_argument for a label name Prometheus does
  // not accept or one given twice.
  static std::string render(const Labels& labels);

  PluginMetrics(MetricsRegistry& registry, std::string plugin)
      : registry_(registry), plugin_(std::move(plugin)), prefix_("parley_" + plugin_ + "_") {}
  Counter& counter(const std::string& name, const std::string& help) override {
    return registry_.counter(full_name(name), help, "", plugin_);
  }
  Gauge& gauge(const std::string& name, const std::string& help) override {
    return registry_.gauge(full_name(name), help, "", plugin_);
  }
  Counter& counter(const std::string& name, const std::string& help,
                   const Labels& labels) override {
    return registry_.counter(full_name(name), help, render(labels), plugin_);
  }
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels) override {
    return registry_.gauge(full_name(name), help, render(labels), plugin_);
  }

 private:
  // Throws std::invalid_argument unless `name` is [a-zA-Z_][a-zA-Z0-9_]*.
  std::string full_name(const std::string& name) const;

  MetricsRegistry& registry_;
  std::string plugin_;
  std::string prefix_;
};

}  // namespace parley::kernel
