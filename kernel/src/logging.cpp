#include "logging.hpp"

#include "parley/timestamp.hpp"

#include <mutex>

#include <fmt/chrono.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace parley::kernel {

namespace {

struct LoggingState {
  std::mutex mutex;
  LogConfig config;
  spdlog::sink_ptr sink;
};

LoggingState& state() {
  static LoggingState s;
  return s;
}

void append_json_string(spdlog::memory_buf_t& out, std::string_view text) {
  out.push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

// One JSON object per line: {"time":...,"level":...,"logger":...,"msg":...}
class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    dest.append(std::string_view("{\"time\":\""));
    dest.append(format_timestamp(msg.time));
    dest.append(std::string_view("\",\"level\":\""));
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    dest.append(std::string_view("\",\"logger\":"));
    append_json_string(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    dest.append(std::string_view(",\"msg\":"));
    append_json_string(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace:
      return spdlog::level::trace;
    case LogLevel::debug:
      return spdlog::level::debug;
    case LogLevel::info:
      return spdlog::level::info;
    case LogLevel::warn:
      return spdlog::level::warn;
    case LogLevel::error:
      return spdlog::level::err;
    case LogLevel::critical:
      return spdlog::level::critical;
  }
  return spdlog::level::info;
}

namespace {

spdlog::sink_ptr make_sink(LogFormat format) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (format == LogFormat::json) {
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ [%n] %v", spdlog::pattern_time_type::utc));
  }
  return sink;
}

}  // namespace

void configure_logging(const LogConfig& config) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.config = config;
  s.sink = make_sink(config.format);
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name,
                                            std::optional<LogLevel> level) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!s.sink) s.sink = make_sink(s.config.format);
  auto logger = std::make_shared<spdlog::logger>(name, s.sink);
  logger->set_level(to_spdlog(level.value_or(s.config.level)));
  logger->flush_on(spdlog::level::warn);
  return logger;
}

void PluginLog::write(LogLevel level, std::string_view line) {
  try {
    logger_->log(to_spdlog(level), line);
  } catch (...) {
    // Logging must never take a plugin down.
  }
}

}  // namespace parley::kernel
