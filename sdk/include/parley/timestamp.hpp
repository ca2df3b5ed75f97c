// Timestamps as the protocol writes them: RFC 3339, UTC, milliseconds
// ("2024-09-13T18:54:30.123Z").
#pragma once

#include <chrono>
#include <string>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace parley {

inline std::string format_timestamp(std::chrono::system_clock::time_point time) {
  // fmt 9 renders a system_clock time point in local time: go through gmtime.
  const auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(time);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(ms)),
                     static_cast<int>(ms.time_since_epoch().count() % 1000));
}

}  // namespace parley
