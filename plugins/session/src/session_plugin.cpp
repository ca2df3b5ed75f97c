// The session plugin: accounts, login sessions and one-to-one chat.
// See plugins/session/README.md.
#include <sodium.h>

#include <parley/migrations.hpp>
#include <parley/sdk.hpp>

#include "accounts.hpp"
#include "chat.hpp"
#include "settings.hpp"

namespace parley::session {
namespace {

class SessionPlugin : public Plugin {
 public:
  explicit SessionPlugin(Host& host) : host_(host) {}

  void configure(Config& config) override {
    settings_.token_ttl = std::chrono::seconds(
        config.int_in("token_ttl_seconds", settings_.token_ttl.count(), 1, 10LL * 365 * 24 * 3600));
    settings_.max_message_length = static_cast<std::size_t>(config.int_in(
        "max_message_length", static_cast<std::int64_t>(settings_.max_message_length), 1, 1 << 20));
    settings_.write_batch_max = static_cast<std::size_t>(config.int_in(
        "write_batch_max", static_cast<std::int64_t>(settings_.write_batch_max), 1, 100000));
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
    }
    settings_.presence_timeout = std::chrono::milliseconds(
        config.int_in("presence_timeout_ms", settings_.presence_timeout.count(), 1, 60000));
  }

  void start() override {
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
    Database* db = host_.database();
    if (db == nullptr) {
      throw std::runtime_error(
          "the session plugin stores accounts and messages: configure database.url");
    }
    db->migrate(parley_plugin_migrations());

    chat_ = std::make_unique<Chat>(host_, settings_);
    accounts_ = std::make_unique<Accounts>(
        host_, settings_,
        [this](std::string user_id, ConnectionId connection, bool had_connection,
               boost::json::object result, Reply reply) {
          chat_->login_sync(user_id, connection, had_connection, std::move(result),
                            std::move(reply));
        },
        [this](std::string user_id) { chat_->user_maybe_offline(user_id); });

    accounts_->register_handlers(host_.gateway());
    chat_->register_handlers(host_.gateway());
    host_.bus().subscribe("gateway.connection.closed", [this](const Event& event) {
      const auto& payload = event.payload.as_object();
      accounts_->connection_closed(payload.at("connection").to_number<ConnectionId>());
      const auto& user = payload.at("user_id").as_string();
      if (!user.empty()) chat_->user_maybe_offline(std::string(user));
    });
  }

  void stop() override {}

 private:
  Host& host_;
  Settings settings_;
  std::unique_ptr<Chat> chat_;
  std::unique_ptr<Accounts> accounts_;
};

const char* const kNoDependencies[] = {nullptr};
const char* const kSoftDependencies[] = {"presence", nullptr};
const char* const kHandles[] = {"register",      "login",  "logout", "user.get",
                                "user.find",     "send",   "mark",   "history",
                                "conversations", "typing", nullptr};
const char* const kPublishes[] = {"session.message.stored", "session.receipt", "push.notify",
                                  nullptr};
const char* const kSubscribes[] = {"gateway.connection.closed", nullptr};

const PluginEntry* entry() {
  static const PluginEntry manifest{
      PARLEY_SDK_ABI_VERSION,
      "session",
      "1.0.0",
      "accounts, login sessions and one-to-one chat with offline delivery and receipts",
      kNoDependencies,
      kSoftDependencies,
      [](Host& host) -> Plugin* { return new SessionPlugin(host); },
      kHandles,
      kNoDependencies,
      kPublishes,
      kSubscribes,
      kNoDependencies};
  return &manifest;
}

}  // namespace
}  // namespace parley::session

PARLEY_PLUGIN(parley::session::entry)
