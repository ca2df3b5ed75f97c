#include "plugin_host.hpp"

#include <atomic>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace parley::kernel {

namespace {

class AsioTimer : public Timer {
 public:
  AsioTimer(boost::asio::any_io_executor executor, std::chrono::milliseconds delay)
      : timer_(executor, delay) {}
  void cancel() override {
    cancelled_ = true;
    boost::asio::post(timer_.get_executor(),
                      [this, keep = keep_alive_.lock()] { timer_.cancel(); });
  }
  boost::asio::steady_timer& timer() { return timer_; }
  bool cancelled() const { return cancelled_.load(); }
  std::weak_ptr<AsioTimer> keep_alive_;

 private:
  boost::asio::steady_timer timer_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

PluginHost::PluginHost(KernelServices services, OwnerPtr owner, std::optional<LogLevel> level)
    : services_(services),
      owner_(owner),
      log_(make_logger(owner->name, level)),
      bus_(services.bus, owner),
      metrics_(services.metrics, owner->name),
      gateway_(services.router, services.connections, owner) {
  if (services.database != nullptr) database_.emplace(*services.database, owner);
}

void PluginHost::guarded(const std::function<void()>& task) {
  try {
    task();
  } catch (const std::exception& e) {
    log_.logger().error("task threw: {}", e.what());
  } catch (...) {
    log_.logger().error("task threw");
  }
}

bool CpuPool::post(std::function<void()> task) {
  if (waiting_.fetch_add(1) >= queue_limit_) {
    waiting_.fetch_sub(1);
    return false;
  }
  boost::asio::post(pool_, [this, task = std::move(task)] {
    waiting_.fetch_sub(1);
    task();
  });
  return true;
}

bool PluginHost::offload(std::function<void()> task) {
  return services_.cpu.post([this, owner = owner_, task = std::move(task)] { guarded(task); });
}

void PluginHost::post(std::function<void()> task) {
  boost::asio::post(services_.workers,
                    [this, owner = owner_, task = std::move(task)] { guarded(task); });
}

std::shared_ptr<Timer> PluginHost::schedule(std::chrono::milliseconds delay,
                                            std::function<void()> task) {
  auto timer = std::make_shared<AsioTimer>(services_.workers, delay);
  timer->keep_alive_ = timer;
  timer->timer().async_wait(
      [this, owner = owner_, timer, task = std::move(task)](boost::system::error_code ec) {
        if (ec || timer->cancelled()) return;
        guarded(task);
      });
  return timer;
}

}  // namespace parley::kernel
