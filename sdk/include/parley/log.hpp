// The logger a plugin receives. Lines carry the plugin's name; the level is
// set per plugin in the config (`log_level` of the plugin's entry).
#pragma once

#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace parley {

enum class LogLevel { trace, debug, info, warn, error, critical };

class Log {
 public:
  virtual ~Log() = default;

  // Whether a line at `level` would be written; check before costly formatting.
  virtual bool enabled(LogLevel level) const = 0;
  // Writes one line. Never throws.
  virtual void write(LogLevel level, std::string_view line) = 0;

  template <typename... Args>
  void debug(fmt::format_string<Args...> f, Args&&... args) {
    emit(LogLevel::debug, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) {
    emit(LogLevel::info, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) {
    emit(LogLevel::warn, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) {
    emit(LogLevel::error, f, std::forward<Args>(args)...);
  }

 private:
  template <typename... Args>
  void emit(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(level)) write(level, fmt::format(f, std::forward<Args>(args)...));
  }
};

}  // namespace parley
