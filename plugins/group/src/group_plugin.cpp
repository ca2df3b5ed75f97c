// The group plugin: groups, their members and roles, the size cap.
// See plugins/group/README.md.
#include <memory>

#include <parley/migrations.hpp>
#include <parley/sdk.hpp>

#include "groups.hpp"
#include "settings.hpp"

namespace parley::group {
namespace {

class GroupPlugin : public Plugin {
 public:
  explicit GroupPlugin(Host& host) : host_(host) {}

  void configure(Config& config) override {
    settings_.max_members = config.int_in("max_members", settings_.max_members, 1, 1'000'000);
    settings_.max_name_length = static_cast<std::size_t>(config.int_in(
        "max_name_length", static_cast<std::int64_t>(settings_.max_name_length), 1, 10'000));
    settings_.max_groups_per_user =
        config.int_in("max_groups_per_user", settings_.max_groups_per_user, 1, 1'000'000);
    settings_.creates_per_user_per_hour = config.int_in(
        "creates_per_user_per_hour", settings_.creates_per_user_per_hour, 1, 1'000'000);
    settings_.contacts_timeout = std::chrono::milliseconds(
        config.int_in("contacts_timeout_ms", settings_.contacts_timeout.count(), 1, 60'000));
  }

  void start() override {
    Database* db = host_.database();
    if (db == nullptr) {
      throw std::runtime_error("the group plugin stores groups: configure database.url");
    }
    // Runs after session's migrations (a hard dependency): its
    // session_group_change() exists by the time a group changes.
    db->migrate(parley_plugin_migrations());
    groups_ = std::make_unique<Groups>(host_, settings_);
    groups_->register_handlers(host_.gateway());
    groups_->serve();
  }

  void stop() override {}

 private:
  Host& host_;
  Settings settings_;
  std::unique_ptr<Groups> groups_;
};

const char* const kHardDependencies[] = {"session", nullptr};
const char* const kNoDependencies[] = {nullptr};
const char* const kHandles[] = {"group.create", "group.add",     "group.remove",
                                "group.leave",  "group.role",    "group.info",
                                "group.list",   "group.privacy", nullptr};
const char* const kServes[] = {"group.shared", nullptr};
const char* const kPublishes[] = {"group.changed", nullptr};

const PluginEntry* entry() {
  static const PluginEntry manifest{PARLEY_SDK_ABI_VERSION,
                                    "group",
                                    "1.0.0",
                                    "groups: membership, roles and the size cap",
                                    kHardDependencies,
                                    kNoDependencies,
                                    [](Host& host) -> Plugin* { return new GroupPlugin(host); },
                                    kHandles,
                                    kServes,
                                    kPublishes,
                                    kNoDependencies,
                                    kNoDependencies};
  return &manifest;
}

}  // namespace
}  // namespace parley::group

PARLEY_PLUGIN(parley::group::entry)
