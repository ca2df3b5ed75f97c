#include "histogram.hpp"

#include <bit>
#include <cmath>

namespace parley::bench {

std::size_t Histogram::index_of(std::uint64_t v) {
  if (v < kLinear) return static_cast<std::size_t>(v);
  const int msb = 63 - std::countl_zero(v);                   // >= kSubBits + 1
  const int shift = msb - kSubBits;                           // >= 1
  const std::uint64_t sub = (v >> shift) - (1u << kSubBits);  // 0 .. 127
  const std::size_t index = kLinear + static_cast<std::size_t>(shift - 1) * (1u << kSubBits) + sub;
  return index < kBuckets ? index : kBuckets - 1;
}

std::uint64_t Histogram::value_of(std::size_t index) {
  if (index < kLinear) return index;
  const std::size_t rest = index - kLinear;
  const int shift = static_cast<int>(rest >> kSubBits) + 1;
  const std::uint64_t low = ((rest & ((1u << kSubBits) - 1)) + (1u << kSubBits)) << shift;
  return low + ((std::uint64_t{1} << shift) >> 1);
}

void Histogram::record(std::chrono::nanoseconds value) {
  const auto ns = value.count() < 0 ? 0 : value.count();
  record_us(static_cast<std::uint64_t>((ns + 500) / 1000));
}

void Histogram::record_us(std::uint64_t micros) {
  buckets_[index_of(micros)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(micros, std::memory_order_relaxed);
  std::uint64_t seen = max_.load(std::memory_order_relaxed);
  while (micros > seen && !max_.compare_exchange_weak(seen, micros, std::memory_order_relaxed)) {
  }
}

double Histogram::quantile_ms(double q) const {
  const std::uint64_t n = count();
  if (n == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n)));
  if (rank < 1) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      // Never report more than the largest sample.
      const auto v = std::min(value_of(i), max_.load(std::memory_order_relaxed));
      return static_cast<double>(v) / 1000.0;
    }
  }
  return max_ms();
}

double Histogram::max_ms() const {
  return static_cast<double>(max_.load(std::memory_order_relaxed)) / 1000.0;
}

double Histogram::mean_ms() const {
  const std::uint64_t n = count();
  return n == 0 ? 0
                : static_cast<double>(sum_.load(std::memory_order_relaxed)) /
                      static_cast<double>(n) / 1000.0;
}

boost::json::object Histogram::summary() const {
  auto round3 = [](double v) { return std::round(v * 1000.0) / 1000.0; };
  return {{"count", count()},
          {"p50_ms", round3(quantile_ms(0.50))},
          {"p90_ms", round3(quantile_ms(0.90))},
          {"p99_ms", round3(quantile_ms(0.99))},
          {"p999_ms", round3(quantile_ms(0.999))},
          {"max_ms", round3(max_ms())},
          {"mean_ms", round3(mean_ms())}};
}

}  // namespace parley::bench
