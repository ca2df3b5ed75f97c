// Logging: one spdlog logger per plugin (plus "kernel"), plain text or JSON
// lines on stderr.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include "kernel_config.hpp"
#include "parley/log.hpp"

namespace parley::kernel {

spdlog::level::level_enum to_spdlog(LogLevel level);

// Configures the default sink and format; call once before make_logger.
void configure_logging(const LogConfig& config);

// A logger named `name`, at `level` (the global level when nullopt).
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, std::optional<LogLevel> level);

// The parley::Log handed to a plugin.
class PluginLog : public Log {
 public:
  explicit PluginLog(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}
  bool enabled(LogLevel level) const override { return logger_->should_log(to_spdlog(level)); }
  void write(LogLevel level, std::string_view line) override;
  spdlog::logger& logger() { return *logger_; }

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace parley::kernel
