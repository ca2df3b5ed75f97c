#include "event_bus.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace parley::kernel {

namespace asio = boost::asio;

struct EventBus::Subscription {
  Subscription(OwnerPtr o, EventHandler h, asio::strand<asio::any_io_executor> s)
      : owner(std::move(o)), handler(std::move(h)), strand(std::move(s)) {}
  OwnerPtr owner;
  EventHandler handler;
  asio::strand<asio::any_io_executor> strand;
  std::atomic<bool> active{true};
};

struct EventBus::Hook {
  OwnerPtr owner;
  int priority;
  std::uint64_t sequence;
  HookHandler handler;
  HookOptions options;
};

struct EventBus::Service {
  OwnerPtr owner;
  ServiceHandler handler;
};

namespace {

// Shared by the reply sink and the timeout timer: whoever answers first wins.
struct PendingRequest {
  std::atomic<bool> answered{false};
  OwnerPtr requester;
  std::string name;
  ResponseHandler on_response;
  asio::any_io_executor workers;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<asio::steady_timer> timer;

  void finish(Response response) {
    if (answered.exchange(true)) return;
    if (timer) timer->cancel();
    asio::post(workers, [requester = requester, name = name, on_response = std::move(on_response),
                         log = log, response = std::move(response)]() mutable {
      try {
        on_response(std::move(response));
      } catch (const std::exception& e) {
        log->error("plugin '{}': response handler for request '{}' threw: {}", requester->name,
                   name, e.what());
      } catch (...) {
        log->error("plugin '{}': response handler for request '{}' threw", requester->name, name);
      }
    });
  }
};

class BusReplySink : public ServiceReplySink {
 public:
  explicit BusReplySink(std::shared_ptr<PendingRequest> pending) : pending_(std::move(pending)) {}
  ~BusReplySink() override {
    pending_->finish(
        {Status(ErrorCode::internal, "service '" + pending_->name + "' did not answer"), nullptr});
  }
  void answer(Response response) override { pending_->finish(std::move(response)); }

 private:
  std::shared_ptr<PendingRequest> pending_;
};

}  // namespace

EventBus::EventBus(asio::any_io_executor workers, std::shared_ptr<spdlog::logger> log)
    : workers_(std::move(workers)), log_(std::move(log)) {}

EventBus::~EventBus() = default;

void EventBus::publish(std::string name, boost::json::value payload) {
  std::vector<std::shared_ptr<Subscription>> targets;
  {
    std::shared_lock lock(mutex_);
    if (auto it = subscriptions_.find(name); it != subscriptions_.end()) targets = it->second;
    for (const auto& [prefix, sub] : prefix_subscriptions_) {
      if (name.starts_with(prefix)) targets.push_back(sub);
    }
  }
  if (targets.empty()) return;
  auto event = std::make_shared<const Event>(Event{std::move(name), std::move(payload)});
  for (auto& sub : targets) {
    asio::post(sub->strand, [sub, event, log = log_] {
      if (!sub->active.load()) return;
      try {
        sub->handler(*event);
      } catch (const std::exception& e) {
        log->error("plugin '{}': handler of event '{}' threw: {}", sub->owner->name, event->name,
                   e.what());
      } catch (...) {
        log->error("plugin '{}': handler of event '{}' threw", sub->owner->name, event->name);
      }
    });
  }
}

void EventBus::subscribe(const OwnerPtr& owner, std::string name, EventHandler handler) {
  auto sub = std::make_shared<Subscription>(owner, std::move(handler), asio::make_strand(workers_));
  std::unique_lock lock(mutex_);
  if (name.ends_with(".*")) {
    name.pop_back();  // keep the dot: "gateway.user.*" matches "gateway.user.online"
    prefix_subscriptions_.emplace_back(std::move(name), std::move(sub));
    return;
  }
  subscriptions_[std::move(name)].push_back(std::move(sub));
}

void EventBus::hook(const OwnerPtr& owner, std::string name, int priority, HookHandler handler,
                    HookOptions options) {
  std::unique_lock lock(mutex_);
  auto& chain = hooks_[std::move(name)];
  chain.push_back(
      std::make_shared<Hook>(Hook{owner, priority, hook_sequence_++, std::move(handler), options}));
  std::stable_sort(chain.begin(), chain.end(), [](const auto& a, const auto& b) {
    return a->priority != b->priority ? a->priority > b->priority : a->sequence < b->sequence;
  });
}

bool EventBus::has_subscribers(std::string_view name) const {
  std::shared_lock lock(mutex_);
  if (auto it = subscriptions_.find(name); it != subscriptions_.end() && !it->second.empty()) {
    return true;
  }
  return std::any_of(prefix_subscriptions_.begin(), prefix_subscriptions_.end(),
                     [&](const auto& entry) { return name.starts_with(entry.first); });
}

bool EventBus::has_hooks(std::string_view name) const {
  std::shared_lock lock(mutex_);
  const auto it = hooks_.find(name);
  return it != hooks_.end() && !it->second.empty();
}

Status EventBus::run_hooks(std::string_view name, boost::json::object& payload) {
  std::vector<std::shared_ptr<Hook>> chain;
  {
    std::shared_lock lock(mutex_);
    auto it = hooks_.find(name);
    if (it == hooks_.end()) return {};
    chain = it->second;
  }
  for (const auto& h : chain) {
    try {
      HookResult result = h->handler(payload);
      if (!result.status.ok()) return result.status;
    } catch (const Failure& f) {
      return Status(f.code(), f.what());
    } catch (const std::exception& e) {
      log_->error("plugin '{}': hook '{}' threw: {}", h->owner->name, name, e.what());
      if (h->options.fail_closed) return Status(ErrorCode::internal, "internal error");
    } catch (...) {
      log_->error("plugin '{}': hook '{}' threw", h->owner->name, name);
      if (h->options.fail_closed) return Status(ErrorCode::internal, "internal error");
    }
  }
  return {};
}

void EventBus::serve(const OwnerPtr& owner, std::string name, ServiceHandler handler) {
  std::unique_lock lock(mutex_);
  if (auto it = services_.find(name); it != services_.end()) {
    throw std::runtime_error("service '" + name + "' is served by both plugin '" +
                             it->second->owner->name + "' and plugin '" + owner->name + "'");
  }
  services_.emplace(std::move(name), std::make_shared<Service>(Service{owner, std::move(handler)}));
}

bool EventBus::has_service(std::string_view name) const {
  std::shared_lock lock(mutex_);
  return services_.find(name) != services_.end();
}

void EventBus::request(const OwnerPtr& requester, std::string name, boost::json::value payload,
                       std::chrono::milliseconds timeout, ResponseHandler on_response) {
  auto pending = std::make_shared<PendingRequest>();
  pending->requester = requester;
  pending->name = name;
  pending->on_response = std::move(on_response);
  pending->workers = workers_;
  pending->log = log_;

  std::shared_ptr<Service> service;
  {
    std::shared_lock lock(mutex_);
    if (auto it = services_.find(name); it != services_.end()) service = it->second;
  }
  if (!service) {
    pending->finish({Status(ErrorCode::unsupported, "no plugin serves '" + name + "'"), nullptr});
    return;
  }

  pending->timer = std::make_unique<asio::steady_timer>(workers_, timeout);
  pending->timer->async_wait(
      [weak = std::weak_ptr<PendingRequest>(pending)](boost::system::error_code ec) {
        if (ec) return;
        if (auto p = weak.lock()) {
          p->finish({Status(ErrorCode::timeout, "service '" + p->name + "' did not answer in time"),
                     nullptr});
        }
      });

  auto sink = std::make_shared<BusReplySink>(pending);
  asio::post(workers_, [service, sink = std::move(sink), payload = std::move(payload), name,
                        log = log_]() mutable {
    try {
      service->handler(payload, ServiceReply(sink));
    } catch (const Failure& f) {
      sink->answer({Status(f.code(), f.what()), nullptr});
    } catch (const std::exception& e) {
      log->error("plugin '{}': service '{}' threw: {}", service->owner->name, name, e.what());
      sink->answer({Status(ErrorCode::internal, "service '" + name + "' failed"), nullptr});
    } catch (...) {
      log->error("plugin '{}': service '{}' threw", service->owner->name, name);
      sink->answer({Status(ErrorCode::internal, "service '" + name + "' failed"), nullptr});
    }
  });
}

void EventBus::remove_owner(const std::string& owner_name) {
  std::unique_lock lock(mutex_);
  for (auto& [name, subs] : subscriptions_) {
    std::erase_if(subs, [&](const auto& s) {
      if (s->owner->name != owner_name) return false;
      s->active = false;
      return true;
    });
  }
  std::erase_if(prefix_subscriptions_, [&](const auto& entry) {
    if (entry.second->owner->name != owner_name) return false;
    entry.second->active = false;
    return true;
  });
  for (auto& [name, chain] : hooks_) {
    std::erase_if(chain, [&](const auto& h) { return h->owner->name == owner_name; });
  }
  std::erase_if(services_, [&](const auto& kv) { return kv.second->owner->name == owner_name; });
}

}  // namespace parley::kernel
