// The parley::Host each plugin receives, and the views it hands out: every
// registration made through them is tagged with the plugin as owner.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <optional>

#include <boost/asio/any_io_executor.hpp>

#include "connection_registry.hpp"
#include "database_pool.hpp"
#include "event_bus.hpp"
#include "logging.hpp"
#include "metrics_registry.hpp"
#include "parley/gateway.hpp"
#include "parley/host.hpp"
#include "router.hpp"
#include "thread_names.hpp"

namespace parley::kernel {

// Threads for slow CPU work (Host::offload), with a bound on what waits.
class CpuPool {
 public:
  CpuPool(int threads, std::size_t queue_limit) : pool_(threads), queue_limit_(queue_limit) {
    name_pool_threads(pool_, threads, "parley-cpu");
  }
  ~CpuPool() { stop(); }
  bool post(std::function<void()> task);
  void stop() {
    pool_.stop();
    pool_.join();
  }
  std::size_t waiting() const { return waiting_.load(); }

 private:
  boost::asio::thread_pool pool_;
  const std::size_t queue_limit_;
  std::atomic<std::size_t> waiting_{0};
};

class SystemClock : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
};

// The kernel's shared services, as the plugin manager passes them on.
struct KernelServices {
  EventBus& bus;
  Router& router;
  ConnectionRegistry& connections;
  DatabasePool* database;  // nullptr when no database is configured
  MetricsRegistry& metrics;
  const Clock& clock;
  boost::asio::any_io_executor workers;
  CpuPool& cpu;
};

class PluginGateway : public Gateway {
 public:
  PluginGateway(Router& router, ConnectionRegistry& connections, OwnerPtr owner)
      : router_(router), connections_(connections), owner_(std::move(owner)) {}
  void handle(std::string type, RequestHandler handler, RequestOptions options) override {
    require_declared(*owner_, owner_->handles, "request type", type);
    router_.add(owner_, std::move(type), std::move(handler), options);
  }
  void send(ConnectionId connection, Frame frame) override { connections_.send(connection, frame); }
  void when_written(ConnectionId connection, std::function<void()> callback) override {
    // The callback is plugin code: it keeps the plugin's library loaded.
    connections_.when_written(connection,
                              [owner = owner_, callback = std::move(callback)] { callback(); });
  }
  void deliver(std::string_view user_id, const Frame& frame, ConnectionId except) override {
    const std::string one(user_id);
    connections_.deliver(std::span<const std::string>(&one, 1), frame, except);
  }
  void deliver_many(std::span<const std::string> user_ids, const Frame& frame,
                    ConnectionId except) override {
    connections_.deliver(user_ids, frame, except);
  }
  bool is_connected(std::string_view user_id) const override {
    return connections_.is_connected(user_id);
  }
  std::optional<std::chrono::system_clock::time_point> last_active(
      std::string_view user_id) const override {
    return connections_.last_active(user_id);
  }
  void bind_user(ConnectionId connection, Binding binding) override {
    connections_.bind_user(connection, std::move(binding));
  }
  void release_events(ConnectionId connection, std::vector<Frame> first) override {
    connections_.release_events(connection, std::move(first));
  }
  void unbind_user(ConnectionId connection) override { connections_.unbind_user(connection); }
  std::string user_of(ConnectionId connection) const override {
    return connections_.user_of(connection);
  }
  std::size_t end_login(std::string_view login_key, const Frame& notice) override {
    return connections_.end_login(login_key, notice);
  }

 private:
  Router& router_;
  ConnectionRegistry& connections_;
  OwnerPtr owner_;
};

class PluginHost : public Host {
 public:
  PluginHost(KernelServices services, OwnerPtr owner, std::optional<LogLevel> level);

  std::string_view plugin_name() const override { return owner_->name; }
  Log& log() override { return log_; }
  Bus& bus() override { return bus_; }
  const Clock& clock() const override { return services_.clock; }
  Metrics& metrics() override { return metrics_; }
  Gateway& gateway() override { return gateway_; }
  Database* database() override { return database_ ? &*database_ : nullptr; }
  void post(std::function<void()> task) override;
  std::shared_ptr<Timer> schedule(std::chrono::milliseconds delay,
                                  std::function<void()> task) override;
  bool offload(std::function<void()> task) override;

 private:
  // Runs plugin code on a worker, reporting what it throws.
  void guarded(const std::function<void()>& task);

  KernelServices services_;
  OwnerPtr owner_;
  PluginLog log_;
  PluginBus bus_;
  PluginMetrics metrics_;
  PluginGateway gateway_;
  std::optional<PluginDatabase> database_;
};

}  // namespace parley::kernel
