// Routes each client request type to the plugin that registered it.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>

#include <spdlog/logger.h>

#include "owner.hpp"
#include "parley/gateway.hpp"

namespace parley::kernel {

class Router {
 public:
  explicit Router(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}

  // Throws if `type` is already routed (the message names both plugins).
  void add(const OwnerPtr& owner, std::string type, RequestHandler handler, RequestOptions options);
  void remove_owner(const std::string& owner_name);

  struct Route {
    OwnerPtr owner;
    RequestHandler handler;
    RequestOptions options;
  };
  // The route of `type`, or nullptr.
  std::shared_ptr<const Route> find(std::string_view type) const;

  // Calls the route's handler, turning exceptions into replies: Failure into
  // its code, anything else into `internal` (logged with the plugin's name).
  void invoke(const Route& route, Request request, const Reply& reply) const;

 private:
  std::shared_ptr<spdlog::logger> log_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, std::shared_ptr<const Route>, std::less<>> routes_;
};

}  // namespace parley::kernel
