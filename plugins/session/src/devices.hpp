// Push devices: device.register / device.unregister, and forgetting tokens a
// push plugin reports dead (push.token.invalid).
#pragma once

#include <parley/sdk.hpp>

#include "settings.hpp"

namespace parley::session {

class Devices {
 public:
  Devices(Host& host, const Settings& settings);

  void register_handlers(Gateway& gateway);
  void subscribe(Bus& bus);

 private:
  void on_register(Request request, Reply reply);
  void on_unregister(Request request, Reply reply);
  void on_token_invalid(const Event& event);
  // Throws bad_request or too_large for a token no push service issues.
  void check_token(std::string_view token) const;

  Host& host_;
  Database& db_;
  const Settings& settings_;
  Counter& evicted_;
  Counter& removed_invalid_;
};

}  // namespace parley::session
