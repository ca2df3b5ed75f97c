// A latency recorder: a log-linear histogram of microseconds (like HDR
// histograms: 128 linear sub-buckets per power of two, so any reported
// percentile is within 0.8% of the true sample). Recording is lock-free and
// safe from any thread; memory is fixed (about 36 KiB) whatever the count.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include <boost/json/object.hpp>

namespace parley::bench {

class Histogram {
 public:
  void record(std::chrono::nanoseconds value);
  void record_us(std::uint64_t micros);

  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // The value at quantile q (0 < q <= 1), in milliseconds; 0 when empty.
  double quantile_ms(double q) const;
  double max_ms() const;
  double mean_ms() const;

  // {"count", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"}
  boost::json::object summary() const;

 private:
  static constexpr int kSubBits = 7;
  static constexpr std::size_t kLinear = 2u << kSubBits;  // values below are exact
  static constexpr std::size_t kBuckets = kLinear + 48 * (1u << kSubBits);
  static std::size_t index_of(std::uint64_t micros);
  static std::uint64_t value_of(std::size_t index);  // middle of the bucket

  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace parley::bench
