// The network side of the gateway: one port serving WebSocket at /ws and the
// operator endpoints /healthz, /readyz and /metrics, optionally over TLS.
// Beast stays inside gateway_server.cpp and the headers only it includes
// (gateway_shared.hpp, websocket_session.hpp, http_session.hpp), the way
// Beast's advanced server example splits listener and sessions.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <spdlog/logger.h>
#include <boost/asio/any_io_executor.hpp>

#include "connection_registry.hpp"
#include "event_bus.hpp"
#include "kernel_config.hpp"
#include "metrics_registry.hpp"
#include "router.hpp"

namespace parley::kernel {

struct GatewayDependencies {
  ServerConfig config;
  Router& router;
  ConnectionRegistry& connections;
  MetricsRegistry& metrics;
  EventBus& bus;
  boost::asio::any_io_executor workers;
  std::function<bool()> ready;  // for /readyz
  std::shared_ptr<spdlog::logger> log;
};

// Metric families the gateway registers on first use, long after plugins
// started: the kernel reserves their names up front (MetricsRegistry::reserve).
inline constexpr const char* kErrorsMetric = "parley_errors_total";
inline constexpr const char* kRequestDurationMetric = "parley_request_duration_seconds";

class GatewayServer {
 public:
  explicit GatewayServer(GatewayDependencies deps);
  ~GatewayServer();
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  // Binds and starts the network threads. Throws when the address cannot be bound
  // or the TLS files cannot be read.
  void start();
  // Closes the listener, says goodbye (1001) to every client, waits up to
  // `close_wait` for them to go, and joins.
  void stop(std::chrono::milliseconds close_wait = std::chrono::seconds(2));
  // The bound port (useful with port 0).
  std::uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::kernel
