// The push_apns plugin: pushes offered on push.offer.apns to Apple devices
// through the APNs provider API (HTTP/2, token-based authentication).
// See plugins/push_apns/README.md.
#include <memory>
#include <optional>

#include <parley/sdk.hpp>

#include "apns.hpp"
#include "dispatcher.hpp"
#include "http_loop.hpp"

namespace parley::push_apns {
namespace {

class ApnsPlugin : public Plugin {
 public:
  explicit ApnsPlugin(Host& host) : host_(host) {}

  void configure(Config& config) override {
    const std::string key_file = config.require_string("key_file");
    // Read now, so that --check-config reports a missing or broken key.
    try {
      key_.emplace(push::PrivateKey::from_pem(push::read_text_file(key_file)));
    } catch (const std::exception& e) {
      config.fail("key_file", key_file + ": " + e.what());
    }
    if (!key_->is_p256()) config.fail("key_file", key_file + ": not an EC P-256 key (.p8)");
    settings_.key_id = config.require_string("key_id");
    settings_.team_id = config.require_string("team_id");
    settings_.topic = config.require_string("topic");
    const std::string environment = config.string_or("environment", "production");
    if (environment == "production") {
      settings_.endpoint = "https://api.push.apple.com";
    } else if (environment == "sandbox") {
      settings_.endpoint = "https://api.sandbox.push.apple.com";
    } else {
      config.fail("environment", "must be \"production\" or \"sandbox\"");
    }
    settings_.endpoint = config.string_or("endpoint", settings_.endpoint);
    while (settings_.endpoint.ends_with('/')) settings_.endpoint.pop_back();
    settings_.expiration = std::chrono::seconds(
        config.int_in("expiration_seconds", settings_.expiration.count(), 0, 30 * 24 * 3600));
    settings_.priority = static_cast<int>(config.int_in("priority", settings_.priority, 1, 10));
    if (settings_.priority != 10 && settings_.priority != 5 && settings_.priority != 1) {
      config.fail("priority", "must be 10, 5 or 1");
    }
    settings_.sound = config.string_or("sound", settings_.sound);
    settings_.jwt_refresh = std::chrono::seconds(
        config.int_in("provider_token_refresh_seconds", settings_.jwt_refresh.count(), 1200, 3300));
    loop_options_ = push::HttpLoopOptions::from_config(config);
    dispatch_ = push::DispatcherOptions::from_config(config, "apns");
  }

  void start() override {
    loop_ = std::make_unique<push::HttpLoop>(loop_options_);
    platform_ = std::make_unique<ApnsPlatform>(host_, *loop_, std::move(*key_), settings_);
    dispatcher_ = std::make_unique<push::Dispatcher>(host_, *loop_, *platform_, dispatch_);
    dispatcher_->start(host_.bus());
    host_.log().info("APNs pushes for {} go to {}", settings_.topic, settings_.endpoint);
  }

  void stop() override {
    if (dispatcher_) dispatcher_->stop();
  }

 private:
  Host& host_;
  std::optional<push::PrivateKey> key_;
  ApnsSettings settings_;
  push::HttpLoopOptions loop_options_;
  push::DispatcherOptions dispatch_;
  std::unique_ptr<push::HttpLoop> loop_;
  std::unique_ptr<ApnsPlatform> platform_;
  std::unique_ptr<push::Dispatcher> dispatcher_;
};

const char* const kNoDependencies[] = {nullptr};
const char* const kServes[] = {"push.platform.apns", nullptr};
const char* const kPublishes[] = {"push.token.invalid", nullptr};
const char* const kSubscribes[] = {"push.offer.apns", nullptr};

const PluginEntry* entry() {
  static const PluginEntry manifest{
      PARLEY_SDK_ABI_VERSION,
      "push_apns",
      "1.0.0",
      "push notifications through the Apple Push Notification service (HTTP/2, token auth)",
      kNoDependencies,
      kNoDependencies,
      [](Host& host) -> Plugin* { return new ApnsPlugin(host); },
      kNoDependencies,
      kServes,
      kPublishes,
      kSubscribes};
  return &manifest;
}

}  // namespace
}  // namespace parley::push_apns

PARLEY_PLUGIN(parley::push_apns::entry)
