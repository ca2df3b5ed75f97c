// The kernel's event bus (see sdk/include/parley/bus.hpp for the contract).
// Plugins reach it through PluginBus, a view that tags every registration
// with its owner.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "owner.hpp"
#include "parley/bus.hpp"

namespace parley::kernel {

class EventBus {
 public:
  // Handlers run on `workers`; `log` reports handlers that throw.
  EventBus(boost::asio::any_io_executor workers, std::shared_ptr<spdlog::logger> log);
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  void publish(std::string name, boost::json::value payload);
  void subscribe(const OwnerPtr& owner, std::string name, EventHandler handler);
  void hook(const OwnerPtr& owner, std::string name, int priority, HookHandler handler,
            HookOptions options = {});
  Status run_hooks(std::string_view name, boost::json::object& payload);
  bool has_subscribers(std::string_view name) const;
  bool has_hooks(std::string_view name) const;
  void serve(const OwnerPtr& owner, std::string name, ServiceHandler handler);
  bool has_service(std::string_view name) const;
  void request(const OwnerPtr& requester, std::string name, boost::json::value payload,
               std::chrono::milliseconds timeout, ResponseHandler on_response);

  // Removes everything `owner_name` registered; handlers already queued for
  // it are skipped.
  void remove_owner(const std::string& owner_name);

 private:
  struct Subscription;
  struct Hook;
  struct Service;

  boost::asio::any_io_executor workers_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, std::vector<std::shared_ptr<Subscription>>, std::less<>> subscriptions_;
  // Subscriptions to "prefix.*": one strand for every matching name.
  std::vector<std::pair<std::string, std::shared_ptr<Subscription>>> prefix_subscriptions_;
  std::map<std::string, std::vector<std::shared_ptr<Hook>>, std::less<>> hooks_;
  std::map<std::string, std::shared_ptr<Service>, std::less<>> services_;
  std::uint64_t hook_sequence_ = 0;
};

// The parley::Bus a plugin sees.
class PluginBus : public Bus {
 public:
  PluginBus(EventBus& bus, OwnerPtr owner) : bus_(bus), owner_(std::move(owner)) {}
  void publish(std::string name, boost::json::value payload) override {
    bus_.publish(std::move(name), std::move(payload));
  }
  void subscribe(std::string name, EventHandler handler) override {
    bus_.subscribe(owner_, std::move(name), std::move(handler));
  }
  void hook(std::string name, int priority, HookHandler handler, HookOptions options) override {
    bus_.hook(owner_, std::move(name), priority, std::move(handler), options);
  }
  Status run_hooks(std::string_view name, boost::json::object& payload) override {
    return bus_.run_hooks(name, payload);
  }
  void serve(std::string name, ServiceHandler handler) override {
    require_declared(*owner_, owner_->serves, "bus service", name);
    bus_.serve(owner_, std::move(name), std::move(handler));
  }
  bool has_service(std::string_view name) const override { return bus_.has_service(name); }
  bool has_subscribers(std::string_view name) const override { return bus_.has_subscribers(name); }
  bool has_hooks(std::string_view name) const override { return bus_.has_hooks(name); }
  void request(std::string name, boost::json::value payload, std::chrono::milliseconds timeout,
               ResponseHandler on_response) override {
    bus_.request(owner_, std::move(name), std::move(payload), timeout, std::move(on_response));
  }

 private:
  EventBus& bus_;
  OwnerPtr owner_;
};

}  // namespace parley::kernel
