// The presence plugin: online status and last_active, for the users one
// shares a conversation or a group with. See plugins/presence/README.md.
#include <parley/migrations.hpp>
#include <parley/sdk.hpp>

#include "presence.hpp"
#include "settings.hpp"

namespace parley::presence {
namespace {

class PresencePlugin : public Plugin {
 public:
  explicit PresencePlugin(Host& host) : host_(host) {}

  void configure(Config& config) override {
    using std::chrono::seconds;
    settings_.timing.offline_after = seconds(config.int_in("offline_after_seconds", 300, 1, 86400));
    settings_.timing.grace = seconds(config.int_in("grace_seconds", 10, 0, 3600));
    settings_.flush_interval = seconds(config.int_in("flush_interval_seconds", 10, 1, 3600));
    settings_.max_subscriptions_per_connection = static_cast<std::size_t>(
        config.int_in("max_subscriptions_per_connection", 1000, 1, 1000000));
    settings_.lookup_timeout =
        std::chrono::milliseconds(config.int_in("lookup_timeout_ms", 5000, 1, 60000));
  }

  void start() override {
    Database* db = host_.database();
    if (db == nullptr) {
      throw std::runtime_error("the presence plugin keeps last_active: configure database.url");
    }
    db->migrate(parley_plugin_migrations());
    presence_ = std::make_shared<Presence>(host_, settings_);
    presence_->start();
  }

  void stop() override {
    if (presence_) presence_->stop();
  }

 private:
  Host& host_;
  Settings settings_;
  std::shared_ptr<Presence> presence_;
};

// session and group are asked over the bus at run time only; session lists
// presence as a soft dependency so that presence starts first.
const char* const kNoDependencies[] = {nullptr};
const char* const kHandles[] = {"presence.subscribe", "presence.unsubscribe", nullptr};
const char* const kServes[] = {"presence.online", nullptr};
const char* const kPublishes[] = {"presence.changed", nullptr};
const char* const kSubscribes[] = {"gateway.user.online",
                                   "gateway.user.offline",
                                   "gateway.user.active",
                                   "gateway.connection.closed",
                                   "gateway.connection.unbound",
                                   "group.changed",
                                   nullptr};

const PluginEntry* entry() {
  static const PluginEntry manifest{PARLEY_SDK_ABI_VERSION,
                                    "presence",
                                    "1.0.0",
                                    "online status and last seen, shown to the people one talks to",
                                    kNoDependencies,
                                    kNoDependencies,
                                    [](Host& host) -> Plugin* { return new PresencePlugin(host); },
                                    kHandles,
                                    kServes,
                                    kPublishes,
                                    kSubscribes,
                                    kNoDependencies};
  return &manifest;
}

}  // namespace
}  // namespace parley::presence

PARLEY_PLUGIN(parley::presence::entry)
