#include "router.hpp"

#include <mutex>
#include <stdexcept>

namespace parley::kernel {

void Router::add(const OwnerPtr& owner, std::string type, RequestHandler handler,
                 RequestOptions options) {
  std::unique_lock lock(mutex_);
  if (auto it = routes_.find(type); it != routes_.end()) {
    throw std::runtime_error("request type '" + type + "' is registered by both plugin '" +
                             it->second->owner->name + "' and plugin '" + owner->name + "'");
  }
  routes_.emplace(std::move(type),
                  std::make_shared<const Route>(Route{owner, std::move(handler), options}));
}

void Router::remove_owner(const std::string& owner_name) {
  std::unique_lock lock(mutex_);
  std::erase_if(routes_, [&](const auto& kv) { return kv.second->owner->name == owner_name; });
}

std::shared_ptr<const Router::Route> Router::find(std::string_view type) const {
  std::shared_lock lock(mutex_);
  auto it = routes_.find(type);
  return it == routes_.end() ? nullptr : it->second;
}

void Router::invoke(const Route& route, Request request, const Reply& reply) const {
  const std::string type = request.type;
  try {
    route.handler(std::move(request), reply);
  } catch (const Failure& f) {
    reply.error(f.code(), f.what());
  } catch (const std::exception& e) {
    log_->error("plugin '{}': handler of '{}' threw: {}", route.owner->name, type, e.what());
    reply.error(ErrorCode::internal, "internal error");
  } catch (...) {
    log_->error("plugin '{}': handler of '{}' threw", route.owner->name, type);
    reply.error(ErrorCode::internal, "internal error");
  }
}

}  // namespace parley::kernel
