// The kernel: owns the shared services (bus, workers, database pool,
// gateway, metrics) and the plugins, and runs them in the right order.
#pragma once

#include <atomic>
#include <memory>

#include <boost/asio/thread_pool.hpp>

#include "connection_registry.hpp"
#include "database_pool.hpp"
#include "event_bus.hpp"
#include "gateway_server.hpp"
#include "kernel_config.hpp"
#include "metrics_registry.hpp"
#include "plugin_host.hpp"
#include "plugin_manager.hpp"
#include "router.hpp"

namespace parley::kernel {

class Kernel {
 public:
  // `clock` replaces the system clock for plugins (tests drive time with it).
  explicit Kernel(KernelConfig config, const Clock* clock = nullptr);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // Loads the plugins and validates the whole config (no side effects).
  void load();
  // Connects the database, starts plugins in order, opens the port. On
  // failure, what already started is stopped and the error is thrown.
  void start();
  // Closes the port, stops plugins in reverse order, finishes queued
  // database work, then stops the workers.
  void stop();

  bool ready() const;
  PluginManager& plugins() { return *plugins_; }
  Router& router() { return router_; }

 private:
  ServerConfig server_within_descriptor_limit() const;

  KernelConfig config_;
  std::shared_ptr<spdlog::logger> log_;
  SystemClock system_clock_;
  MetricsRegistry metrics_;
  Router router_;
  std::unique_ptr<boost::asio::thread_pool> workers_;
  std::unique_ptr<CpuPool> cpu_;
  std::unique_ptr<DatabasePool> database_;
  std::unique_ptr<EventBus> bus_;
  std::unique_ptr<ConnectionRegistry> connections_;
  std::unique_ptr<PluginManager> plugins_;
  std::unique_ptr<GatewayServer> gateway_;
  std::atomic<bool> running_{false};
};

}  // namespace parley::kernel
