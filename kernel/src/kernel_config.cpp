#include "kernel_config.hpp"

#include <cstdlib>
#include <regex>
#include <set>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <boost/dll/runtime_symbol_info.hpp>

#include "ip_address.hpp"

namespace parley::kernel {

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "trace") return LogLevel::trace;
  if (text == "debug") return LogLevel::debug;
  if (text == "info") return LogLevel::info;
  if (text == "warn" || text == "warning") return LogLevel::warn;
  if (text == "error") return LogLevel::error;
  if (text == "critical") return LogLevel::critical;
  return std::nullopt;
}

std::filesystem::path default_plugin_dir() {
  return boost::dll::program_location().parent_path().parent_path() / "lib" / "parley" / "plugins";
}

std::filesystem::path KernelConfig::library_path(const PluginConfig& plugin) const {
  if (plugin.library.empty()) return plugin_dir / ("parley_" + plugin.name + ".so");
  std::filesystem::path path(plugin.library);
  if (path.is_absolute()) return path;
  if (!path.has_parent_path()) {
    // A bare name: a file in plugin_dir.
    return plugin_dir / path;
  }
  return std::filesystem::path(document->file()).parent_path() / path;
}

namespace {

LogLevel read_level(YamlConfig& cfg, std::string_view key, LogLevel fallback) {
  auto text = cfg.get_string(key);
  if (!text) return fallback;
  auto level = parse_log_level(*text);
  if (!level) cfg.fail(key, "expected one of trace, debug, info, warn, error, critical");
  return *level;
}

std::chrono::seconds seconds_in(YamlConfig& cfg, std::string_view key,
                                std::chrono::seconds fallback, std::int64_t min, std::int64_t max) {
  return std::chrono::seconds(cfg.int_in(key, fallback.count(), min, max));
}

// An IP address in the form the gateway compares peers in ("::1", not
// "0:0:0:0:0:0:0:1"; an IPv4-mapped IPv6 address as the IPv4 one), or
// nullopt.
std::optional<std::string> canonical_address(const std::string& text) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(text, ec);
  if (ec) return std::nullopt;
  return unmapped(address).to_string();
}

void read_server(YamlConfig& cfg, ServerConfig& server) {
  server.listen = cfg.string_or("listen", server.listen);
  if (!canonical_address(server.listen)) {
    cfg.fail("listen",
             "'" + server.listen + "' is not an IP address (a host name is not resolved)");
  }
  server.port = static_cast<std::uint16_t>(cfg.int_in("port", server.port, 0, 65535));
  server.io_threads = static_cast<int>(cfg.int_in("io_threads", server.io_threads, 1, 64));
  server.max_frame_bytes = static_cast<std::size_t>(cfg.int_in(
      "max_frame_bytes", static_cast<std::int64_t>(server.max_frame_bytes), 256, 16 << 20));
  server.idle_timeout = seconds_in(cfg, "idle_timeout_seconds", server.idle_timeout, 2, 86400);
  server.handshake_timeout =
      seconds_in(cfg, "handshake_timeout_seconds", server.handshake_timeout, 1, 600);
  server.max_queued_frames = static_cast<std::size_t>(cfg.int_in(
      "max_queued_frames", static_cast<std::int64_t>(server.max_queued_frames), 1, 1 << 24));
  server.max_queued_bytes = static_cast<std::size_t>(cfg.int_in(
      "max_queued_bytes", static_cast<std::int64_t>(server.max_queued_bytes), 1024, 1LL << 32));
  server.activity_interval = std::chrono::milliseconds(
      cfg.int_in("activity_interval_ms", server.activity_interval.count(), 10, 3600 * 1000));
  server.max_pending_requests = static_cast<std::size_t>(cfg.int_in(
      "max_pending_requests", static_cast<std::int64_t>(server.max_pending_requests), 1, 1 << 20));
  // Unset, it is at least max_frame_bytes: a config that raised only that
  // (valid before this key existed) keeps starting.
  server.max_pending_request_bytes = static_cast<std::size_t>(cfg.int_in(
      "max_pending_request_bytes",
      static_cast<std::int64_t>(std::max(server.max_pending_request_bytes, server.max_frame_bytes)),
      256, 1LL << 32));
  if (server.max_pending_request_bytes < server.max_frame_bytes) {
    cfg.fail("max_pending_request_bytes",
             "must be at least max_frame_bytes (" + std::to_string(server.max_frame_bytes) +
                 "), or a request of one large frame could never wait its turn");
  }
  server.node_id =
      static_cast<std::uint32_t>(cfg.int_in("node_id", server.node_id, 0, (1 << 20) - 1));
  if (auto proxies = cfg.get_string_list("trusted_proxies")) {
    server.trusted_proxies.clear();
    for (std::size_t i = 0; i < proxies->size(); ++i) {
      const auto address = canonical_address((*proxies)[i]);
      if (!address) {
        cfg.fail_item("trusted_proxies", i,
                      "'" + (*proxies)[i] +
                          "' is not an IP address (one address per entry; ranges and host names "
                          "are not supported)");
      }
      server.trusted_proxies.push_back(*address);
    }
  }
  if (auto origins = cfg.get_string_list("allowed_origins")) server.allowed_origins = *origins;
  server.metrics_token = cfg.string_or("metrics_token", "");
  server.max_connections = static_cast<std::size_t>(cfg.int_in(
      "max_connections", static_cast<std::int64_t>(server.max_connections), 1, 10000000));
  server.max_connections_per_address = static_cast<std::size_t>(
      cfg.int_in("max_connections_per_address",
                 static_cast<std::int64_t>(server.max_connections_per_address), 1, 10000000));
  server.http_keepalive_requests = static_cast<std::size_t>(
      cfg.int_in("http_keepalive_requests",
                 static_cast<std::int64_t>(server.http_keepalive_requests), 1, 1000000));
  server.login_timeout = seconds_in(cfg, "login_timeout_seconds", server.login_timeout, 1, 86400);
  if (auto* limit = cfg.section("rate_limit")) {
    if (auto rate = limit->get_double("requests_per_second")) {
      if (*rate <= 0) limit->fail("requests_per_second", "must be positive");
      server.requests_per_second = *rate;
    }
    if (auto burst = limit->get_double("burst")) {
      if (*burst < 1) limit->fail("burst", "must be at least 1");
      server.request_burst = *burst;
    }
  }
  if (auto* tls = cfg.section("tls")) {
    TlsConfig t;
    t.certificate_file = tls->require_string("certificate");
    t.private_key_file = tls->require_string("private_key");
    server.tls = t;
  }
  if (auto dir = cfg.get_string("static_dir")) {
    std::filesystem::path path(*dir);
    if (path.is_relative()) path = std::filesystem::path(cfg.file()).parent_path() / path;
    path = std::filesystem::absolute(path).lexically_normal();
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec))
      cfg.fail("static_dir", "no such folder: " + path.string());
    server.static_dir = path;
  }
  server.static_content_security_policy =
      cfg.string_or("static_content_security_policy", server.static_content_security_policy);
  if (server.static_content_security_policy.find_first_of("\r\n") != std::string::npos) {
    cfg.fail("static_content_security_policy", "must be one line");
  }
}

}  // namespace

std::size_t descriptor_reserve(const KernelConfig& config) {
  // The pool, its health check, and a migration's own connection.
  const std::size_t database =
      config.database.url.empty() ? 0 : static_cast<std::size_t>(config.database.pool_size) + 2;
  return kDescriptorReserve + database;
}

std::size_t max_connections_within(std::size_t configured, std::uint64_t descriptor_limit,
                                   std::size_t reserve) {
  // A limit below the reserve is a misconfiguration the warning names;
  // half of it still lets the server answer someone.
  const std::uint64_t available =
      descriptor_limit > 2 * reserve ? descriptor_limit - reserve : descriptor_limit / 2;
  return static_cast<std::size_t>(
      std::max<std::uint64_t>(1, std::min<std::uint64_t>(configured, available)));
}

KernelConfig load_kernel_config(const std::string& file) {
  KernelConfig config;
  config.document = YamlConfig::load_file(file);
  YamlConfig& root = *config.document;

  if (auto* server = root.section("server")) read_server(*server, config.server);

  if (auto* db = root.section("database")) {
    config.database.url = db->string_or("url", "");
    config.database.pool_size =
        static_cast<int>(db->int_in("pool_size", config.database.pool_size, 1, 256));
    config.database.connect_timeout =
        seconds_in(*db, "connect_timeout_seconds", config.database.connect_timeout, 1, 3600);
    config.database.query_timeout = std::chrono::milliseconds(
        db->int_in("query_timeout_ms", config.database.query_timeout.count(), 100, 3600 * 1000));
    config.database.reconnect_interval =
        seconds_in(*db, "reconnect_interval_seconds", config.database.reconnect_interval, 1, 600);
  }
  if (config.database.url.empty()) {
    if (const char* env = std::getenv("DATABASE_URL"); env != nullptr) config.database.url = env;
  }

  if (auto* log = root.section("log")) {
    config.log.level = read_level(*log, "level", config.log.level);
    const auto format = log->string_or("format", "text");
    if (format == "text") {
      config.log.format = LogFormat::text;
    } else if (format == "json") {
      config.log.format = LogFormat::json;
    } else {
      log->fail("format", "expected text or json");
    }
  }

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  config.worker_threads = static_cast<int>(root.int_in("worker_threads", cores, 1, 256));
  config.cpu_threads = static_cast<int>(root.int_in("cpu_threads", config.cpu_threads, 1, 256));
  config.cpu_queue_limit = static_cast<std::size_t>(root.int_in(
      "cpu_queue_limit", static_cast<std::int64_t>(config.cpu_queue_limit), 1, 1 << 20));
  config.shutdown_timeout = std::chrono::milliseconds(
      root.int_in("shutdown_timeout_ms", config.shutdown_timeout.count(), 100, 600000));

  if (auto dir = root.get_string("plugin_dir")) {
    std::filesystem::path path(*dir);
    if (path.is_relative()) path = std::filesystem::path(file).parent_path() / path;
    config.plugin_dir = path.lexically_normal();
  } else {
    config.plugin_dir = default_plugin_dir();
  }

  static const std::regex name_pattern("[a-z0-9_]+");
  std::set<std::string> names;
  for (YamlConfig* entry : root.list_of_sections("plugins")) {
    PluginConfig plugin;
    plugin.entry = entry;
    plugin.name = entry->require_string("name");
    if (!std::regex_match(plugin.name, name_pattern)) {
      entry->fail("name", "a plugin name is made of a-z, 0-9 and _");
    }
    if (!names.insert(plugin.name).second) {
      entry->fail("name", "plugin '" + plugin.name + "' is listed twice");
    }
    plugin.library = entry->string_or("library", "");
    plugin.enabled = entry->bool_or("enabled", true);
    if (entry->get_string("log_level"))
      plugin.log_level = read_level(*entry, "log_level", LogLevel::info);
    plugin.config = entry->section_or_empty("config");
    config.plugins.push_back(std::move(plugin));
  }
  return config;
}

}  // namespace parley::kernel
