#include "accounts.hpp"

#include <sodium.h>

#include <atomic>

#include <parley/fields.hpp>

#include "wire.hpp"

namespace parley::session {

namespace json = boost::json;
using fields::optional_string;
using fields::required_string;

namespace {

constexpr std::size_t kTokenBytes = 32;
constexpr const char* kTooManyHashes = "too many password checks in progress; retry later";

std::string random_token() {
  unsigned char raw[kTokenBytes];
  randombytes_buf(raw, sizeof raw);
  char encoded[sodium_base64_ENCODED_LEN(kTokenBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(encoded, sizeof encoded, raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return encoded;
}

// Tokens are stored only as a hash (hex of BLAKE2b-256).
std::string token_hash(std::string_view token) {
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  char hex[sizeof digest * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

std::string hash_password(std::string_view password, std::uint64_t ops, std::size_t mem) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), ops, mem) != 0) {
    throw Failure(ErrorCode::internal, "cannot hash the password now");
  }
  return out;
}

void check_length(std::string_view value, std::string_view field, std::size_t max) {
  if (value.empty())
    throw Failure(ErrorCode::bad_request, "'" + std::string(field) + "' must not be empty");
  if (utf8_length(value) > max) {
    throw Failure(ErrorCode::bad_request,
                  "'" + std::string(field) + "' is longer than " + std::to_string(max));
  }
}

// Names and emails are shown and compared as text: NUL (which PostgreSQL
// would cut the value at) and other control characters are refused.
void check_no_controls(std::string_view value, std::string_view field) {
  for (const unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      throw Failure(ErrorCode::bad_request,
                    "'" + std::string(field) + "' must not contain control characters");
    }
  }
}

// A name is shown in other users' clients and copied into group system
// messages: a bidirectional embedding, override or isolate (U+202A-U+202E,
// U+2066-U+2069) would reorder the text around it, and a name of spaces
// shows as nothing.
void check_display_name(std::string_view name) {
  for (std::size_t i = 0; i + 2 < name.size(); ++i) {
    if (static_cast<unsigned char>(name[i]) != 0xe2) continue;
    const auto b1 = static_cast<unsigned char>(name[i + 1]);
    const auto b2 = static_cast<unsigned char>(name[i + 2]);
    if ((b1 == 0x80 && b2 >= 0xaa && b2 <= 0xae) || (b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9)) {
      throw Failure(ErrorCode::bad_request,
                    "'name' must not contain bidirectional formatting characters");
    }
  }
  if (name.find_first_not_of(' ') == std::string_view::npos) {
    throw Failure(ErrorCode::bad_request, "'name' must not be blank");
  }
}

// A password may hold any character but NUL.
void check_no_nul(std::string_view value, std::string_view field) {
  if (value.find('\0') != std::string_view::npos)
    throw Failure(ErrorCode::bad_request, "'" + std::string(field) + "' must not contain NUL");
}

}  // namespace

// Ends the "login in progress" state of a connection with the login's answer.
class Accounts::LoginReplySink : public ReplySink {
 public:
  LoginReplySink(Accounts& accounts, ConnectionId connection, Reply inner)
      : accounts_(accounts), connection_(connection), inner_(std::move(inner)) {}
  ~LoginReplySink() override {
    // Dropped without an answer: the inner reply reports `internal`; the
    // connection may log in again.
    if (!answered_) accounts_.login_finished(connection_, false);
  }
  void answer(Status status, json::object result) override {
    if (answered_.exchange(true)) return;
    accounts_.login_finished(connection_, status.ok());
    if (status.ok()) {
      inner_.ok(std::move(result));
    } else {
      inner_.fail(status);
    }
  }

 private:
  Accounts& accounts_;
  ConnectionId connection_;
  Reply inner_;
  std::atomic<bool> answered_{false};
};

Accounts::Accounts(Host& host, const Settings& settings, AfterLogin after_login,
                   AfterLogout after_logout)
    : host_(host),
      db_(*host.database()),
      settings_(settings),
      after_login_(std::move(after_login)),
      after_logout_(std::move(after_logout)),
      registrations_(settings.registrations_per_address, std::chrono::hours(1)),
      failed_by_address_(settings.failed_logins_per_address, std::chrono::minutes(15)),
      failed_by_account_address_(settings.failed_logins_per_account_address,
                                 std::chrono::minutes(15)),
      failed_by_account_(settings.failed_logins_per_account, std::chrono::hours(1)),
      password_logins_by_address_(settings.password_logins_per_address, std::chrono::minutes(15)),
      hashes_by_address_(settings.hashes_at_once_per_address),
      hashes_by_account_(settings.hashes_at_once_per_account),
      user_finds_(settings.user_finds_per_minute, std::chrono::minutes(1)) {
  dummy_hash_ = hash_password("not a real password", settings_.password_ops_limit,
                              settings_.password_mem_limit_bytes);
}

void Accounts::register_handlers(Gateway& gateway) {
  // Every handler here only checks and queues work: password hashing goes
  // to the kernel's CPU pool (Host::offload), away from the request workers.
  const RequestOptions quick{.nonblocking = true};
  const RequestOptions quick_before_login{.before_login = true, .nonblocking = true};
  gateway.handle(
      "register", [this](Request r, Reply reply) { on_register(std::move(r), std::move(reply)); },
      quick_before_login);
  gateway.handle(
      "login", [this](Request r, Reply reply) { on_login(std::move(r), std::move(reply)); },
      quick_before_login);
  gateway.handle(
      "logout", [this](Request r, Reply reply) { on_logout(std::move(r), std::move(reply)); },
      quick);
  gateway.handle(
      "user.get", [this](Request r, Reply reply) { on_user_get(std::move(r), std::move(reply)); },
      quick);
  gateway.handle(
      "user.find", [this](Request r, Reply reply) { on_user_find(std::move(r), std::move(reply)); },
      quick);
}

void Accounts::on_register(Request request, Reply reply) {
  const std::string name(required_string(request.fields, "name"));
  const std::string email(required_string(request.fields, "email"));
  const std::string password(required_string(request.fields, "password"));
  check_length(name, "name", 100);
  check_length(email, "email", 254);
  check_length(password, "password", 1024);
  check_no_controls(name, "name");
  check_display_name(name);
  check_no_controls(email, "email");
  check_no_nul(password, "password");
  if (email.find('@') == std::string::npos)
    throw Failure(ErrorCode::bad_request, "'email' is not an email address");
  const std::string address_key = address_limit_key(request.remote_address);
  if (!registrations_.try_record(address_key, host_.clock().now())) {
    throw Failure(ErrorCode::rate_limited, "too many registrations from this address; retry later");
  }

  // Cheap first: a taken email is refused before any hashing.
  auto taken = std::make_shared<bool>(false);
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        *taken =
            !tx.exec_params("SELECT 1 FROM users WHERE lower(email) = lower($1)", email).empty();
      },
      [=, this](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        if (*taken) return reply.error(ErrorCode::conflict, "this email is already registered");
        auto address_slot = hashes_by_address_.try_acquire(address_key);
        if (!address_slot) return reply.error(ErrorCode::rate_limited, kTooManyHashes);
        // The slot is given back when the task is done or dropped.
        const bool queued = host_.offload([=, this, held = std::move(address_slot)] {
          std::string hash;
          try {
            hash = hash_password(password, settings_.password_ops_limit,
                                 settings_.password_mem_limit_bytes);
          } catch (const Failure& f) {
            return reply.error(f.code(), f.what());
          }
          insert_user(email, name, std::move(hash), reply);
        });
        if (!queued) reply.error(ErrorCode::unavailable, "the server is busy; retry later");
      });
}

void Accounts::insert_user(std::string email, std::string name, std::string hash, Reply reply) {
  auto user_id = std::make_shared<std::string>();
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::work tx(conn);
        try {
          *user_id = tx.exec_params1(
                           "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) "
                           "RETURNING id",
                           email, name, hash)[0]
                         .as<std::string>();
          tx.commit();
        } catch (const pqxx::unique_violation&) {
          throw Failure(ErrorCode::conflict, "this email is already registered");
        }
      },
      [=](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        reply.ok({{"user_id", *user_id}});
      });
}

void Accounts::on_login(Request request, Reply reply) {
  if (!request.user_id.empty())
    throw Failure(ErrorCode::bad_request, "this connection is already logged in");
  {
    std::lock_guard lock(mutex_);
    if (!logging_in_.insert(request.connection).second) {
      throw Failure(ErrorCode::bad_request, "a login is already in progress on this connection");
    }
  }
  // Whatever happens next, the connection may try again afterwards.
  Reply guarded(std::make_shared<LoginReplySink>(*this, request.connection, reply));
  try {
    if (auto token = optional_string(request.fields, "token")) {
      login_with_token(request.connection, std::string(*token), guarded);
    } else {
      const auto email = optional_string(request.fields, "email");
      const auto password = optional_string(request.fields, "password");
      if (!email || !password)
        throw Failure(ErrorCode::bad_request, "login needs 'email' and 'password', or 'token'");
      check_no_controls(*email, "email");
      check_no_nul(*password, "password");
      login_with_password(request.connection, request.remote_address, std::string(*email),
                          std::string(*password), guarded);
    }
  } catch (const Failure& f) {
    guarded.error(f.code(), f.what());
  }
}

void Accounts::login_with_password(ConnectionId connection, const std::string& address,
                                   std::string email, std::string password, Reply reply) {
  // Failed logins are capped per address, per (account, address) and per
  // account. Each attempt counts before its password is checked and is taken
  // back if the password was right: guesses sent in parallel cannot all pass
  // a check that none of them has counted against yet.
  auto attempt = std::make_shared<CountedAttempt>();
  attempt->at = host_.clock().now();
  const std::string address_key = address_limit_key(address);
  if (!failed_by_address_.try_record(address_key, attempt->at)) {
    return reply.error(ErrorCode::rate_limited, "too many failed logins; retry later");
  }
  attempt->address_key = address_key;
  // Successes count too: each costs a hash, as a failure does.
  if (!password_logins_by_address_.try_record(address_key, attempt->at)) {
    take_back(*attempt);
    return reply.error(ErrorCode::rate_limited, "too many logins from this address; retry later");
  }
  struct Found {
    std::string user_id, name, hash;
    bool known_address = false;
  };
  auto found = std::make_shared<std::optional<Found>>();
  auto lowered_email = std::make_shared<std::string>();
  const auto known_days = settings_.known_login_address_days;
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        const auto row = tx.exec_params1(
            "SELECT lower($1::text), u.id, u.name, u.password_hash,"
            " EXISTS (SELECT 1 FROM known_login_addresses k WHERE k.user_id = u.id"
            " AND k.address = $2 AND k.last_login > now() - make_interval(days => $3))"
            " FROM (SELECT 1) AS one LEFT JOIN users u ON lower(u.email) = lower($1::text)",
            email, address_key, static_cast<int>(known_days));
        *lowered_email = row[0].as<std::string>();
        found->reset();
        if (!row[1].is_null()) {
          *found = Found{row[1].as<std::string>(), row[2].as<std::string>(),
                         row[3].as<std::string>(), known_days > 0 && row[4].as<bool>()};
        }
      },
      [=, this](const Status& status) {
        if (!status.ok()) {
          take_back(*attempt);
          return reply.fail(status);
        }
        // An account is known by its id, so that every spelling of its email
        // that the database matches shares its counts; an unknown email by
        // the database's lowercase of it, so that it is refused exactly as
        // an account would be and the answers reveal nothing.
        const std::string account =
            found->has_value() ? "u:" + (*found)->user_id : "e:" + *lowered_email;
        const bool known_address = found->has_value() && (*found)->known_address;
        if (!count_account_attempt(*attempt, account, address_key, known_address)) {
          take_back(*attempt);
          return reply.error(ErrorCode::rate_limited, "too many failed logins; retry later");
        }
        auto address_slot = hashes_by_address_.try_acquire(address_key);
        auto account_slot = address_slot ? hashes_by_account_.try_acquire(account) : nullptr;
        if (!account_slot) {
          take_back(*attempt);
          return reply.error(ErrorCode::rate_limited, kTooManyHashes);
        }
        // Verifying costs tens of milliseconds of CPU: on the CPU pool. The
        // slots are given back when the task is done or dropped.
        const bool queued = host_.offload(
            [=, this, held = std::make_pair(std::move(address_slot), std::move(account_slot))] {
              const std::string& hash = found->has_value() ? (*found)->hash : dummy_hash_;
              const bool valid =
                  crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
              if (!valid || !found->has_value()) {
                if (attempt->past_account_limit) {
                  return reply.error(ErrorCode::rate_limited,
                                     "too many failed logins; retry later");
                }
                return reply.error(ErrorCode::unauthenticated, "invalid credentials");
              }
              take_back(*attempt);
              issue_token(connection, (*found)->user_id, (*found)->name, address_key, reply);
            });
        if (!queued) {
          take_back(*attempt);
          reply.error(ErrorCode::unavailable, "the server is busy; retry later");
        }
      });
}

bool Accounts::count_account_attempt(CountedAttempt& attempt, const std::string& account,
                                     const std::string& address_key, bool known_address) {
  attempt.account_at = host_.clock().now();
  const std::string account_address_key = account + "\n" + address_key;
  if (!failed_by_account_address_.try_record(account_address_key, attempt.account_at)) {
    return false;
  }
  attempt.account_address_key = account_address_key;
  if (!failed_by_account_.try_record(account, attempt.account_at)) {
    // From an address the account logged in from before, the right password
    // still works past the account's limit: the owner's usual addresses
    // stay open while strangers elsewhere use up the account's hour. A
    // guesser there is still held to failed_logins_per_account_and_address.
    if (!known_address) return false;
    attempt.past_account_limit = true;
    return true;
  }
  attempt.account_key = account;
  return true;
}

void Accounts::take_back(const CountedAttempt& attempt) {
  if (!attempt.address_key.empty()) failed_by_address_.release(attempt.address_key, attempt.at);
  if (!attempt.account_address_key.empty()) {
    failed_by_account_address_.release(attempt.account_address_key, attempt.account_at);
  }
  if (!attempt.account_key.empty()) {
    failed_by_account_.release(attempt.account_key, attempt.account_at);
  }
}

void Accounts::issue_token(ConnectionId connection, std::string user_id, std::string name,
                           std::string address_key, Reply reply) {
  auto token = std::make_shared<std::string>(random_token());
  auto expires_at = std::make_shared<std::string>();
  auto revoked = std::make_shared<std::vector<std::string>>();
  const auto ttl = std::to_string(settings_.token_ttl.count());
  const auto others_kept = static_cast<std::int64_t>(settings_.max_tokens_per_user) - 1;
  const auto known_days = settings_.known_login_address_days;
  db_.run(
      [=](pqxx::connection& conn) {
        revoked->clear();  // the pool may run this twice (a dead connection)
        pqxx::work tx(conn);
        // One token issue per user at a time: concurrent logins would each
        // count the others' tokens as they were and together pass the cap.
        tx.exec_params("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", user_id);
        const auto hash = token_hash(*token);
        *expires_at =
            tx.exec_params1(
                  "INSERT INTO session_tokens (token_hash, user_id, expires_at) VALUES "
                  "(decode($1, 'hex'), $2, now() + make_interval(secs => $3)) RETURNING " +
                      sql_timestamp("expires_at"),
                  hash, user_id, ttl)[0]
                .as<std::string>();
        // The new token is never among those revoked, whatever the order of
        // concurrent logins' created_at.
        for (const auto& row :
             tx.exec_params("UPDATE session_tokens SET revoked_at = now() WHERE token_hash IN ("
                            " SELECT token_hash FROM session_tokens WHERE user_id = $1"
                            " AND revoked_at IS NULL AND expires_at > now() AND token_hash <> "
                            "decode($2, 'hex')"
                            " ORDER BY created_at DESC, token_hash DESC OFFSET $3)"
                            " RETURNING encode(token_hash, 'hex')",
                            user_id, hash, others_kept)) {
          revoked->push_back(row[0].as<std::string>());
        }
        // Addresses are kept no longer than they count (with 0 days, none
        // are, including those stored while it was higher).
        tx.exec_params(
            "DELETE FROM known_login_addresses WHERE user_id = $1"
            " AND last_login <= now() - make_interval(days => $2)",
            user_id, static_cast<int>(known_days));
        if (known_days > 0 && !address_key.empty()) {
          tx.exec_params(
              "INSERT INTO known_login_addresses (user_id, address, last_login)"
              " VALUES ($1, $2, now()) ON CONFLICT (user_id, address)"
              " DO UPDATE SET last_login = EXCLUDED.last_login",
              user_id, address_key);
        }
        tx.commit();
      },
      [=, this](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        for (const auto& hash : *revoked) {
          host_.gateway().end_login(
              hash, make_frame(json::object{{"type", "session_ended"}, {"reason", "revoked"}}));
        }
        finish_login(connection, user_id, name, *token, *expires_at,
                     std::chrono::duration_cast<std::chrono::milliseconds>(settings_.token_ttl),
                     reply);
      });
}

void Accounts::login_with_token(ConnectionId connection, std::string token, Reply reply) {
  struct Found {
    std::string user_id, name, expires_at;
    std::int64_t remaining_ms;
  };
  auto found = std::make_shared<std::optional<Found>>();
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        auto rows =
            tx.exec_params("SELECT u.id, u.name, " + sql_timestamp("t.expires_at") +
                               ", (extract(epoch FROM t.expires_at - now()) * 1000)::bigint"
                               " FROM session_tokens t JOIN users u ON u.id = t.user_id"
                               " WHERE t.token_hash = decode($1, 'hex') AND t.revoked_at IS NULL"
                               " AND t.expires_at > now()",
                           token_hash(token));
        if (!rows.empty()) {
          *found = Found{rows[0][0].as<std::string>(), rows[0][1].as<std::string>(),
                         rows[0][2].as<std::string>(), rows[0][3].as<std::int64_t>()};
        }
      },
      [=, this](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        if (!found->has_value())
          return reply.error(ErrorCode::unauthenticated, "invalid credentials");
        finish_login(connection, (*found)->user_id, (*found)->name, token, (*found)->expires_at,
                     std::chrono::milliseconds((*found)->remaining_ms), reply);
      });
}

void Accounts::finish_login(ConnectionId connection, std::string user_id, std::string name,
                            std::string token, std::string expires_at,
                            std::chrono::milliseconds remaining, Reply reply) {
  const std::string hash = token_hash(token);
  // At expiry, every connection of the token ends, as at a logout.
  auto expiry = host_.schedule(remaining, [this, hash] {
    host_.gateway().end_login(
        hash, make_frame(json::object{{"type", "session_ended"}, {"reason", "expired"}}));
  });
  {
    std::lock_guard lock(mutex_);
    token_hash_by_connection_[connection] = hash;
    if (auto old = expiry_timers_.find(connection); old != expiry_timers_.end()) {
      old->second->cancel();
    }
    expiry_timers_[connection] = std::move(expiry);
  }
  auto& gateway = host_.gateway();
  const bool had_connection = gateway.is_connected(user_id);
  // The token's hash groups this connection with the others of its login,
  // so that logging out ends all of them.
  gateway.bind_user(
      connection, Binding{.user_id = user_id, .hold_events = true, .login_key = token_hash(token)});
  json::object result{
      {"user_id", user_id}, {"name", name}, {"token", token}, {"expires_at", expires_at}};
  after_login_(user_id, connection, had_connection, std::move(result), reply);
}

void Accounts::login_finished(ConnectionId connection, bool succeeded) {
  std::lock_guard lock(mutex_);
  logging_in_.erase(connection);
  if (succeeded) return;
  token_hash_by_connection_.erase(connection);
  if (auto it = expiry_timers_.find(connection); it != expiry_timers_.end()) {
    it->second->cancel();
    expiry_timers_.erase(it);
  }
}

void Accounts::on_logout(Request request, Reply reply) {
  std::string hash;
  {
    std::lock_guard lock(mutex_);
    if (auto it = token_hash_by_connection_.find(request.connection);
        it != token_hash_by_connection_.end()) {
      hash = it->second;
      token_hash_by_connection_.erase(it);
    }
    if (auto it = expiry_timers_.find(request.connection); it != expiry_timers_.end()) {
      it->second->cancel();
      expiry_timers_.erase(it);
    }
  }
  const ConnectionId connection = request.connection;
  const std::string user_id = request.user_id;
  db_.run(
      [hash](pqxx::connection& conn) {
        if (hash.empty()) return;
        pqxx::work tx(conn);
        tx.exec_params(
            "UPDATE session_tokens SET revoked_at = now() WHERE token_hash = decode($1, 'hex')",
            hash);
        tx.commit();
      },
      [=, this](const Status& status) {
        if (!status.ok()) {
          std::lock_guard lock(mutex_);
          token_hash_by_connection_[connection] = hash;
          return reply.fail(status);
        }
        auto& gateway = host_.gateway();
        gateway.unbind_user(connection);
        // Every other connection logged in with this token ends too.
        gateway.end_login(
            hash, make_frame(json::object{{"type", "session_ended"}, {"reason", "logged_out"}}));
        reply.ok();
        after_logout_(user_id);
      });
}

void Accounts::lookup_user(const std::string& where, const std::string& value, Reply reply) {
  auto found = std::make_shared<std::optional<std::pair<std::string, std::string>>>();
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        auto rows = tx.exec_params("SELECT id, name FROM users WHERE " + where, value);
        if (!rows.empty())
          *found = std::make_pair(rows[0][0].as<std::string>(), rows[0][1].as<std::string>());
      },
      [=](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        if (!found->has_value()) return reply.error(ErrorCode::not_found, "no such user");
        reply.ok({{"user_id", (*found)->first}, {"name", (*found)->second}});
      });
}

void Accounts::on_user_get(Request request, Reply reply) {
  const auto id = parse_user_id(required_string(request.fields, "user_id"));
  if (!id) return reply.error(ErrorCode::not_found, "no such user");
  lookup_user("id = $1", std::to_string(*id), std::move(reply));
}

void Accounts::on_user_find(Request request, Reply reply) {
  const std::string email(required_string(request.fields, "email"));
  check_no_controls(email, "email");
  // Found or not, each answer tells whether an email has an account: a
  // budget of its own, far below the general request budget.
  if (!user_finds_.try_record(request.user_id, host_.clock().now())) {
    throw Failure(ErrorCode::rate_limited, "too many user.find requests; retry later");
  }
  lookup_user("lower(email) = lower($1)", email, std::move(reply));
}

namespace {
constexpr auto kTokenCleanupInterval = std::chrono::minutes(10);
constexpr int kTokenCleanupBatch = 1000;
}  // namespace

void Accounts::start_token_cleanup() {
  std::lock_guard lock(cleanup_mutex_);
  if (cleanup_stopped_) return;
  cleanup_timer_ = host_.schedule(kTokenCleanupInterval, [this] { clean_tokens(); });
}

void Accounts::stop_token_cleanup() {
  std::lock_guard lock(cleanup_mutex_);
  cleanup_stopped_ = true;
  if (cleanup_timer_) cleanup_timer_->cancel();
  cleanup_timer_.reset();
}

void Accounts::clean_tokens() {
  auto deleted = std::make_shared<std::size_t>(0);
  const auto known_days = settings_.known_login_address_days;
  db_.run(
      [deleted, known_days](pqxx::connection& conn) {
        // Small batches keep each transaction short; a full batch means
        // more may be left, and the next one runs at once.
        pqxx::work tx(conn);
        *deleted = tx.exec_params(
                         "DELETE FROM session_tokens WHERE token_hash IN (SELECT token_hash FROM"
                         " session_tokens WHERE expires_at < now() OR revoked_at IS NOT NULL"
                         " LIMIT $1)",
                         kTokenCleanupBatch)
                       .affected_rows();
        // Known login addresses past their age, also of accounts that no
        // longer log in with their password (client addresses are kept no
        // longer than they count).
        *deleted = std::max(
            *deleted, static_cast<std::size_t>(
                          tx.exec_params("DELETE FROM known_login_addresses WHERE ctid IN (SELECT"
                                         " ctid FROM known_login_addresses WHERE last_login <="
                                         " now() - make_interval(days => $1) LIMIT $2)",
                                         static_cast<int>(known_days), kTokenCleanupBatch)
                              .affected_rows()));
        tx.commit();
      },
      [this, deleted](const Status& status) {
        if (!status.ok()) host_.log().warn("token cleanup failed: {}", status.message());
        if (status.ok() && *deleted == static_cast<std::size_t>(kTokenCleanupBatch)) {
          host_.post([this] { clean_tokens(); });
          return;
        }
        start_token_cleanup();
      });
}

void Accounts::stop_expiry_timers() {
  std::lock_guard lock(mutex_);
  for (auto& [connection, timer] : expiry_timers_) timer->cancel();
  expiry_timers_.clear();
}

void Accounts::connection_closed(ConnectionId connection) {
  std::lock_guard lock(mutex_);
  token_hash_by_connection_.erase(connection);
  if (auto it = expiry_timers_.find(connection); it != expiry_timers_.end()) {
    it->second->cancel();
    expiry_timers_.erase(it);
  }
  logging_in_.erase(connection);
}

}  // namespace parley::session
