#include "kernel.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "logging.hpp"
#include "thread_names.hpp"

namespace parley::kernel {

Kernel::Kernel(KernelConfig config, const Clock* clock)
    : config_(std::move(config)),
      log_(make_logger("kernel", std::nullopt)),
      router_(log_),
      workers_(std::make_unique<boost::asio::thread_pool>(config_.worker_threads)),
      cpu_(std::make_unique<CpuPool>(config_.cpu_threads, config_.cpu_queue_limit)) {
  name_pool_threads(*workers_, config_.worker_threads, "parley-worker");
  metrics_.reserve(kErrorsMetric);
  metrics_.reserve(kRequestDurationMetric);
  if (!config_.database.url.empty())
    database_ = std::make_unique<DatabasePool>(config_.database, metrics_, log_);
  bus_ = std::make_unique<EventBus>(workers_->get_executor(), log_);
  const Clock& plugin_clock = clock ? *clock : system_clock_;
  connections_ =
      std::make_unique<ConnectionRegistry>(*bus_, plugin_clock, config_.server.activity_interval);
  KernelServices services{*bus_,
                          router_,
                          *connections_,
                          database_.get(),
                          metrics_,
                          plugin_clock,
                          workers_->get_executor(),
                          *cpu_};
  plugins_ = std::make_unique<PluginManager>(services, log_);
}

Kernel::~Kernel() {
  stop();
}

void Kernel::load() {
  plugins_->load(config_);
}

// max_connections, lowered when the process's descriptor limit cannot hold
// that many sockets: past the limit accepts fail (EMFILE) for everyone,
// while the cap refuses only the newest and keeps descriptors for the rest.
ServerConfig Kernel::server_within_descriptor_limit() const {
  ServerConfig server = config_.server;
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) return server;
  const std::size_t reserve = descriptor_reserve(config_);
  server.max_connections = max_connections_within(server.max_connections, files.rlim_cur, reserve);
  if (server.max_connections < config_.server.max_connections) {
    log_->warn(
        "server.max_connections is {} but the descriptor limit (RLIMIT_NOFILE) is {}: accepting "
        "at most {} connections, keeping {} descriptors for the database pool, plugins and logs; "
        "raise the limit (ulimit -n, LimitNOFILE=) to allow more",
        config_.server.max_connections, files.rlim_cur, server.max_connections, reserve);
  }
  return server;
}

void Kernel::start() {
  if (database_) database_->start();
  try {
    plugins_->start_all();
    gateway_ = std::make_unique<GatewayServer>(
        GatewayDependencies{server_within_descriptor_limit(), router_, *connections_, metrics_,
                            *bus_, workers_->get_executor(), [this] { return ready(); }, log_});
    gateway_->start();
  } catch (...) {
    gateway_.reset();
    plugins_->stop_all();
    if (database_) database_->stop();
    throw;
  }
  running_ = true;
  log_->info("parley started: plugins {}", fmt::join(plugins_->start_order_names(), ", "));
}

bool Kernel::ready() const {
  return running_.load() && plugins_->all_started() && (!database_ || database_->available());
}

void Kernel::stop() {
  running_ = false;
  // Clients get at most 2 s to close, and at most a quarter of the stop's
  // bound, so that plugins still stop (and flush) within shutdown_timeout_ms.
  if (gateway_) {
    gateway_->stop(
        std::min<std::chrono::milliseconds>(std::chrono::seconds(2), config_.shutdown_timeout / 4));
  }
  if (plugins_) plugins_->stop_all();
  // Queued database work finishes; its callbacks may still post to the workers.
  if (database_) database_->stop();
  if (cpu_) cpu_->stop();
  if (workers_) {
    // Work not started by now is dropped: a request it would have answered
    // gets `internal`. Its handlers are destroyed here, while the gateway
    // and the plugins' libraries they refer to still exist.
    workers_->stop();
    workers_->join();
    workers_.reset();
  }
  if (plugins_) plugins_->destroy_all();
  gateway_.reset();
}

}  // namespace parley::kernel
