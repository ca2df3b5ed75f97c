// The push_fcm plugin: pushes offered on push.offer.fcm to Android (and any
// FCM client) through Firebase Cloud Messaging's HTTP v1 API.
// See plugins/push_fcm/README.md.
#include <memory>
#include <optional>

#include <parley/sdk.hpp>

#include "dispatcher.hpp"
#include "fcm.hpp"
#include "http_loop.hpp"

namespace parley::push_fcm {
namespace {

class FcmPlugin : public Plugin {
 public:
  explicit FcmPlugin(Host& host) : host_(host) {}

  void configure(Config& config) override {
    const std::string file = config.require_string("service_account_file");
    // Read now, so that --check-config reports a missing or broken file.
    try {
      account_.emplace(load_service_account(file));
    } catch (const std::exception& e) {
      config.fail("service_account_file", e.what());
    }
    settings_.endpoint = config.string_or("endpoint", settings_.endpoint);
    while (settings_.endpoint.ends_with('/')) settings_.endpoint.pop_back();
    settings_.android_priority = config.string_or("android_priority", settings_.android_priority);
    if (settings_.android_priority != "high" && settings_.android_priority != "normal") {
      config.fail("android_priority", "must be \"high\" or \"normal\"");
    }
    settings_.ttl = std::chrono::seconds(
        config.int_in("ttl_seconds", settings_.ttl.count(), 0, 28 * 24 * 3600));
    settings_.quota_backoff_min = std::chrono::milliseconds(
        config.int_in("quota_backoff_min_ms", settings_.quota_backoff_min.count(), 1, 3600000));
    loop_options_ = push::HttpLoopOptions::from_config(config);
    dispatch_ = push::DispatcherOptions::from_config(config, "fcm");
  }

  void start() override {
    loop_ = std::make_unique<push::HttpLoop>(loop_options_);
    platform_ = std::make_unique<FcmPlatform>(host_, *loop_, std::move(*account_), settings_);
    dispatcher_ = std::make_unique<push::Dispatcher>(host_, *loop_, *platform_, dispatch_);
    dispatcher_->start(host_.bus());
    host_.log().info("FCM pushes go to {}", settings_.endpoint);
  }

  // The kernel removed the subscription first: nothing new arrives while the
  // loop stops.
  void stop() override {
    if (dispatcher_) dispatcher_->stop();
  }

 private:
  Host& host_;
  std::optional<ServiceAccount> account_;
  FcmSettings settings_;
  push::HttpLoopOptions loop_options_;
  push::DispatcherOptions dispatch_;
  std::unique_ptr<push::HttpLoop> loop_;
  std::unique_ptr<FcmPlatform> platform_;
  std::unique_ptr<push::Dispatcher> dispatcher_;
};

const char* const kNoDependencies[] = {nullptr};
const char* const kServes[] = {"push.platform.fcm", nullptr};
const char* const kPublishes[] = {"push.token.invalid", nullptr};
const char* const kSubscribes[] = {"push.offer.fcm", nullptr};

const PluginEntry* entry() {
  static const PluginEntry manifest{PARLEY_SDK_ABI_VERSION,
                                    "push_fcm",
                                    "1.0.0",
                                    "push notifications through Firebase Cloud Messaging (HTTP v1)",
                                    kNoDependencies,
                                    kNoDependencies,
                                    [](Host& host) -> Plugin* { return new FcmPlugin(host); },
                                    kNoDependencies,
                                    kServes,
                                    kPublishes,
                                    kSubscribes};
  return &manifest;
}

}  // namespace
}  // namespace parley::push_fcm

PARLEY_PLUGIN(parley::push_fcm::entry)
