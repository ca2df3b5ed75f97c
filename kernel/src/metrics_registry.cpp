#include "metrics_registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string_view>

namespace parley::kernel {

namespace {

std::string series(const std::string& name, const std::string& labels) {
  return labels.empty() ? name : name + "{" + labels + "}";
}

std::string number(double v) {
  return fmt::format("{}", v);
}

// [a-zA-Z_][a-zA-Z0-9_]*: a metric name without colons (those are for
// recording rules), and a label name.
bool is_identifier(std::string_view text) {
  if (text.empty() || std::isdigit(static_cast<unsigned char>(text.front()))) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// HELP text escapes backslashes and line breaks (exposition format 0.0.4).
std::string escape_help(const std::string& help) {
  std::string out;
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

HistogramMetric::HistogramMetric(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void HistogramMetric::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void HistogramMetric::render(std::string& out, const std::string& name,
                             const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : labels + ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, sep, number(bounds_[i]), cumulative);
  }
  cumulative += buckets_[bounds_.size()].load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, sep, cumulative);
  out += fmt::format("{} {}\n", series(name + "_sum", labels), number(sum_.load()));
  out += fmt::format("{} {}\n", series(name + "_count", labels), cumulative);
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const std::string& help,
                                                 const std::string& type,
                                                 const std::string& owner) {
  if (!owner.empty() && reserved_.contains(name)) {
    throw std::invalid_argument("metric " + name + " is already registered by the kernel");
  }
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.help = help;
    it->second.type = type;
    it->second.owner = owner;
  } else if (it->second.owner != owner) {
    const auto& holder = it->second.owner;
    throw std::invalid_argument("metric " + name + " is already registered by " +
                                (holder.empty() ? "the kernel" : "plugin '" + holder + "'"));
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + name + " registered as both " + it->second.type + " and " +
                           type);
  }
  return it->second;
}

CounterMetric& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                        const std::string& labels, const std::string& owner) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, "counter", owner).counters[labels];
  if (!slot) slot = std::make_unique<CounterMetric>();
  return *slot;
}

GaugeMetric& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                                    const std::string& labels, const std::string& owner) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, "gauge", owner).gauges[labels];
  if (!slot) slot = std::make_unique<GaugeMetric>();
  return *slot;
}

HistogramMetric& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                            const std::string& labels,
                                            const std::vector<double>& bounds) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, "histogram").histograms[labels];
  if (!slot) slot = std::make_unique<HistogramMetric>(bounds);
  return *slot;
}

void MetricsRegistry::reserve(const std::string& name) {
  std::lock_guard lock(mutex_);
  reserved_.insert(name);
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, fam] : families_) {
    out += "# HELP " + name + " " + escape_help(fam.help) + "\n";
    out += "# TYPE " + name + " " + fam.type + "\n";
    for (const auto& [labels, c] : fam.counters)
      out += series(name, labels) + " " + number(c->value()) + "\n";
    for (const auto& [labels, g] : fam.gauges)
      out += series(name, labels) + " " + number(g->value()) + "\n";
    for (const auto& [labels, h] : fam.histograms) h->render(out, name, labels);
  }
  return out;
}

std::string PluginMetrics::full_name(const std::string& name) const {
  if (!is_identifier(name)) {
    throw std::invalid_argument("metric name '" + name +
                                "' must be letters, digits and '_', not starting with a digit");
  }
  return prefix_ + name;
}

std::string PluginMetrics::render(const Labels& given) {
  Labels labels = given;
  std::sort(labels.begin(), labels.end());
  std::string out;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto& [name, value] = labels[i];
    if (!is_identifier(name) || name.starts_with("__")) {
      throw std::invalid_argument("label name '" + name +
                                  "' must be letters, digits and '_', not starting with a digit "
                                  "or '__'");
    }
    if (i > 0 && labels[i - 1].first == name) {
      throw std::invalid_argument("label '" + name + "' given twice");
    }
    if (!out.empty()) out += ',';
    out += name + "=\"";
    for (const char c : value) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out;
}

}  // namespace parley::kernel
