// The kernel's own configuration: everything in parley.yaml outside the
// plugins' config blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/log.hpp"
#include "yaml_config.hpp"

namespace parley::kernel {

struct TlsConfig {
  std::string certificate_file;
  std::string private_key_file;
};

struct ServerConfig {
  std::string listen = "0.0.0.0";
  std::uint16_t port = 8080;
  int io_threads = 1;
  std::size_t max_frame_bytes = 64 * 1024;
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds handshake_timeout{10};
  // A connection whose unsent frames pass either limit is closed.
  std::size_t max_queued_frames = 4096;
  std::size_t max_queued_bytes = 4 * 1024 * 1024;
  // Token bucket per connection: sustained requests per second and burst.
  double requests_per_second = 200;
  double request_burst = 400;
  // A user's activity is published on the bus at most this often.
  std::chrono::milliseconds activity_interval{5000};
  // Requests of one connection waiting for earlier ones (they take effect
  // in arrival order); past it a request is answered rate_limited.
  std::size_t max_pending_requests = 256;
  // ... and the bytes of their frames at most (each holds its parsed request
  // while it waits); at least max_frame_bytes, so that any one frame may wait.
  std::size_t max_pending_request_bytes = 1024 * 1024;
  // This server's number among several sharing one database (0 to 2^20-1):
  // bits 32 and up of every ConnectionId it hands out.
  std::uint32_t node_id = 0;
  // Open connections (every accepted socket, from accept to close) at most,
  // in all and per client address (an IPv6 client by its /64); past either
  // a socket is closed at accept. Lowered at start to fit the descriptor
  // limit (max_connections_within).
  std::size_t max_connections = 100000;
  std::size_t max_connections_per_address = 1000;
  // HTTP requests one connection may make; the last is answered with
  // Connection: close (nginx's keepalive_requests, and its default).
  std::size_t http_keepalive_requests = 1000;
  // A connection that has not logged in this long after its upgrade is
  // closed (1008).
  std::chrono::seconds login_timeout{60};
  // Browser origins allowed to open WebSockets (the Origin header); empty:
  // any, and clients that send none.
  std::vector<std::string> allowed_origins;
  // When set, GET /metrics needs "Authorization: Bearer <metrics_token>".
  std::string metrics_token;
  // Peers whose X-Forwarded-For is believed (reverse proxies); the client's
  // address is then the last one they appended.
  std::vector<std::string> trusted_proxies;
  std::optional<TlsConfig> tls;
  // Folder served at / over HTTP GET (absolute); empty: no static files.
  std::filesystem::path static_dir;
  // Sent with every static file; empty: none. The default lets a page load
  // only its own origin's scripts, styles and images, talk only to its own
  // origin (the WebSocket included), and not be framed by another site.
  std::string static_content_security_policy =
      "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none';"
      " form-action 'none'";
};

struct DatabaseConfig {
  std::string url;  // empty: no database
  int pool_size = 4;
  std::chrono::seconds reconnect_interval{1};
  // libpq's connect_timeout for every connection the pool opens.
  std::chrono::seconds connect_timeout{5};
  // A job that waited or ran longer is answered unavailable, and the pool
  // reports the database unavailable (/readyz 503).
  std::chrono::milliseconds query_timeout{10000};
};

enum class LogFormat { text, json };

struct LogConfig {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::text;
};

struct PluginConfig {
  std::string name;
  std::string library;  // a path, or empty to look up parley_<name>.so in plugin_dir
  bool enabled = true;
  std::optional<LogLevel> log_level;
  YamlConfig* config = nullptr;  // the plugin's own block, owned by KernelConfig::document
  YamlConfig* entry = nullptr;   // the list entry, for error messages
};

struct KernelConfig {
  std::unique_ptr<YamlConfig> document;
  ServerConfig server;
  DatabaseConfig database;
  LogConfig log;
  int worker_threads = 2;  // default: the number of cores
  // Slow CPU work of plugins (password hashing): threads and waiting tasks.
  int cpu_threads = 1;
  std::size_t cpu_queue_limit = 64;
  std::chrono::milliseconds shutdown_timeout{10000};
  std::filesystem::path plugin_dir;
  std::vector<PluginConfig> plugins;  // in file order, enabled or not

  // Path of the library of `plugin`.
  std::filesystem::path library_path(const PluginConfig& plugin) const;
};

// Reads and validates the kernel's keys of `file`. Plugin blocks are only
// located; each plugin validates its own. Unknown keys are checked by the
// caller once plugins have read theirs (YamlConfig::check_unknown_keys).
KernelConfig load_kernel_config(const std::string& file);

std::optional<LogLevel> parse_log_level(std::string_view text);

// Descriptors a server keeps for what is not a client connection (the
// listener, the log, the event loops, plugins' outgoing connections), on
// top of the database pool's.
inline constexpr std::size_t kDescriptorReserve = 64;
std::size_t descriptor_reserve(const KernelConfig& config);

// The connections a process allowed `descriptor_limit` descriptors can
// hold while keeping `reserve` for other uses: `configured`, or fewer.
std::size_t max_connections_within(std::size_t configured, std::uint64_t descriptor_limit,
                                   std::size_t reserve);

// The plugin directory used when the config names none: next to the binary,
// ../lib/parley/plugins (the layout of both the build tree and an install).
std::filesystem::path default_plugin_dir();

}  // namespace parley::kernel
