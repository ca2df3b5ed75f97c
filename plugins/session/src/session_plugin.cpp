// The session plugin: accounts, login sessions and one-to-one chat.
// See plugins/session/README.md.
#include <sodium.h>

#include <parley/migrations.hpp>
#include <parley/sdk.hpp>

#include "accounts.hpp"
#include "catch_up.hpp"
#include "chat.hpp"
#include "contacts.hpp"
#include "devices.hpp"
#include "online_view.hpp"
#include "settings.hpp"

namespace parley::session {
namespace {

class SessionPlugin : public Plugin {
 public:
  explicit SessionPlugin(Host& host) : host_(host) {}

  void configure(Config& config) override {
    settings_.token_ttl = std::chrono::seconds(
        config.int_in("token_ttl_seconds", settings_.token_ttl.count(), 1, 10LL * 365 * 24 * 3600));
    settings_.max_tokens_per_user = static_cast<std::size_t>(
        config.int_in("max_tokens_per_user",
                      static_cast<std::int64_t>(settings_.max_tokens_per_user), 1, 100000));
    settings_.max_message_length = static_cast<std::size_t>(config.int_in(
        "max_message_length", static_cast<std::int64_t>(settings_.max_message_length), 1, 1 << 20));
    settings_.write_batch_max = static_cast<std::size_t>(config.int_in(
        "write_batch_max", static_cast<std::int64_t>(settings_.write_batch_max), 1, 100000));
    settings_.write_queue_max_bytes = static_cast<std::size_t>(config.int_in(
        "write_queue_max_bytes", static_cast<std::int64_t>(settings_.write_queue_max_bytes),
        1 << 20, 1LL << 36));
    if (auto* hashing = config.section("password_hashing")) {
      settings_.password_ops_limit = static_cast<std::uint64_t>(
          hashing->int_in("ops_limit", static_cast<std::int64_t>(settings_.password_ops_limit),
                          crypto_pwhash_OPSLIMIT_MIN, 32));
      settings_.password_mem_limit_bytes =
          static_cast<std::size_t>(hashing->int_in(
              "mem_limit_kib", static_cast<std::int64_t>(settings_.password_mem_limit_bytes >> 10),
              crypto_pwhash_MEMLIMIT_MIN >> 10, 4 << 20))
          << 10;
    }
    if (auto* push = config.section("push")) {
      settings_.push_show_content = push->bool_or("show_content", settings_.push_show_content);
      settings_.push_generic_text = push->string_or("generic_text", settings_.push_generic_text);
      settings_.push_platforms =
          push->get_string_list("platforms").value_or(settings_.push_platforms);
      for (const auto& platform : settings_.push_platforms) {
        // The name becomes part of bus names (push.offer.<platform>).
        if (platform.empty() || platform.find_first_not_of(
                                    "abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos) {
          push->fail("platforms", "platform names are made of a-z, 0-9 and _");
        }
      }
      settings_.push_max_devices_per_user = static_cast<std::size_t>(
          push->int_in("max_devices_per_user",
                       static_cast<std::int64_t>(settings_.push_max_devices_per_user), 1, 1000));
      settings_.push_max_token_bytes = static_cast<std::size_t>(push->int_in(
          "max_token_bytes", static_cast<std::int64_t>(settings_.push_max_token_bytes), 1, 65536));
    }
    if (auto* limits = config.section("limits")) {
      settings_.registrations_per_address = limits->int_in(
          "registrations_per_address_per_hour", settings_.registrations_per_address, 1, 1 << 30);
      settings_.failed_logins_per_address = limits->int_in(
          "failed_logins_per_address_per_15min", settings_.failed_logins_per_address, 1, 1 << 30);
      settings_.failed_logins_per_account_address =
          limits->int_in("failed_logins_per_account_and_address_per_15min",
                         settings_.failed_logins_per_account_address, 1, 1 << 30);
      settings_.failed_logins_per_account = limits->int_in(
          "failed_logins_per_account_per_hour", settings_.failed_logins_per_account, 1, 1 << 30);
      settings_.known_login_address_days =
          limits->int_in("known_login_address_days", settings_.known_login_address_days, 0, 3650);
      settings_.password_logins_per_address =
          limits->int_in("password_logins_per_address_per_15min",
                         settings_.password_logins_per_address, 1, 1 << 30);
      settings_.hashes_at_once_per_address = limits->int_in(
          "password_hashes_at_once_per_address", settings_.hashes_at_once_per_address, 1, 1 << 20);
      settings_.hashes_at_once_per_account = limits->int_in(
          "password_hashes_at_once_per_account", settings_.hashes_at_once_per_account, 1, 1 << 20);
      settings_.user_finds_per_minute = limits->int_in("user_find_per_user_per_minute",
                                                       settings_.user_finds_per_minute, 1, 1 << 20);
    }
  }

  void start() override {
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
    Database* db = host_.database();
    if (db == nullptr) {
      throw std::runtime_error(
          "the session plugin stores accounts and messages: configure database.url");
    }
    db->migrate(parley_plugin_migrations());

    online_view_ = std::make_unique<OnlineView>(host_);
    chat_ = std::make_unique<Chat>(host_, settings_, *online_view_);
    catch_up_ = std::make_unique<CatchUp>(
        host_, [this](const std::string& user_id) { chat_->user_maybe_offline(user_id); });
    accounts_ = std::make_unique<Accounts>(
        host_, settings_,
        [this](std::string user_id, ConnectionId connection, bool had_connection,
               boost::json::object result, Reply reply) {
          catch_up_->start(user_id, connection, had_connection, std::move(result),
                           std::move(reply));
        },
        [this](std::string user_id) { chat_->user_maybe_offline(user_id); });

    accounts_->register_handlers(host_.gateway());
    accounts_->start_token_cleanup();
    chat_->register_handlers(host_.gateway());
    contacts_ = std::make_unique<Contacts>(host_);
    contacts_->serve();
    devices_ = std::make_unique<Devices>(host_, settings_);
    devices_->register_handlers(host_.gateway());
    devices_->subscribe(host_.bus());
    host_.bus().subscribe("gateway.connection.closed", [this](const Event& event) {
      const auto& payload = event.payload.as_object();
      accounts_->connection_closed(payload.at("connection").to_number<ConnectionId>());
      const auto& user = payload.at("user_id").as_string();
      if (!user.empty()) chat_->user_maybe_offline(std::string(user));
    });
  }

  void stop() override {
    if (accounts_) {
      accounts_->stop_token_cleanup();
      accounts_->stop_expiry_timers();
    }
  }

 private:
  Host& host_;
  Settings settings_;
  std::unique_ptr<OnlineView> online_view_;
  std::unique_ptr<Chat> chat_;
  std::unique_ptr<CatchUp> catch_up_;
  std::unique_ptr<Accounts> accounts_;
  std::unique_ptr<Contacts> contacts_;
  std::unique_ptr<Devices> devices_;
};

const char* const kNoDependencies[] = {nullptr};
const char* const kSoftDependencies[] = {"presence", nullptr};
const char* const kHandles[] = {
    "register", "login",         "logout", "user.get",        "user.find",         "send", "mark",
    "history",  "conversations", "typing", "device.register", "device.unregister", nullptr};
const char* const kPublishes[] = {"session.message.stored", "session.receipt", "push.offer.*",
                                  nullptr};
const char* const kSubscribes[] = {"gateway.connection.closed", "push.token.invalid",
                                   "presence.changed", nullptr};
const char* const kServes[] = {"session.contacts", nullptr};

const PluginEntry* entry() {
  static const PluginEntry manifest{
      PARLEY_SDK_ABI_VERSION,
      "session",
      "1.0.0",
      "accounts, login sessions, one-to-one and group chat with offline delivery and receipts",
      kNoDependencies,
      kSoftDependencies,
      [](Host& host) -> Plugin* { return new SessionPlugin(host); },
      kHandles,
      kServes,
      kPublishes,
      kSubscribes,
      kNoDependencies};
  return &manifest;
}

}  // namespace
}  // namespace parley::session

PARLEY_PLUGIN(parley::session::entry)
