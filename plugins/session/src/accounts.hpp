// Accounts and login sessions: register, login (password or token), logout,
// user.get, user.find.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <parley/sdk.hpp>

#include "attempt_limiter.hpp"
#include "settings.hpp"

namespace parley::session {

class Accounts {
 public:
  // Called once credentials are verified and the connection is bound with
  // its events held: sends the catch-up and answers the login with
  // `login_result`.
  using AfterLogin =
      std::function<void(std::string user_id, ConnectionId connection, bool had_connection,
                         boost::json::object login_result, Reply reply)>;
  // Called after a logout unbound a connection of `user_id`.
  using AfterLogout = std::function<void(std::string user_id)>;

  Accounts(Host& host, const Settings& settings, AfterLogin after_login, AfterLogout after_logout);

  void register_handlers(Gateway& gateway);
  // Deletes expired and revoked tokens in batches, every few minutes, until
  // stop_token_cleanup().
  void start_token_cleanup();
  void stop_token_cleanup();
  // Cancels the expiry timers (the plugin stops).
  void stop_expiry_timers();
  // Forgets what was kept for a closed connection.
  void connection_closed(ConnectionId connection);

 private:
  class LoginReplySink;

  void on_register(Request request, Reply reply);
  void on_login(Request request, Reply reply);
  void on_logout(Request request, Reply reply);
  void on_user_get(Request request, Reply reply);
  void on_user_find(Request request, Reply reply);

  void insert_user(std::string email, std::string name, std::string hash, Reply reply);
  void login_with_password(ConnectionId connection, const std::string& address, std::string email,
                           std::string password, Reply reply);
  void login_with_token(ConnectionId connection, std::string token, Reply reply);
  // The failed-login counts one password attempt was counted in (the keys
  // it got past), so that they can be taken back if the password was right.
  struct CountedAttempt {
    AttemptLimiter::Time at;
    AttemptLimiter::Time account_at;
    std::string address_key;
    std::string account_address_key;
    std::string account_key;
    // Past the account's limit but from a known login address: the
    // password is checked, and a wrong one is answered as over the limit
    // (never `unauthenticated`, which would tell the address is known).
    bool past_account_limit = false;
  };
  // Counts the attempt against `account` (from `address_key`) and against
  // the account from every address; false when either is used up (the
  // latter only from an address the account has not logged in from).
  bool count_account_attempt(CountedAttempt& attempt, const std::string& account,
                             const std::string& address_key, bool known_address);
  void take_back(const CountedAttempt& attempt);
  // Issues a token; past max_tokens_per_user live ones, revokes the oldest
  // and ends their connections.
  // `address_key` (the client's address as the limits count it) becomes one
  // of the account's known login addresses.
  void issue_token(ConnectionId connection, std::string user_id, std::string name,
                   std::string address_key, Reply reply);
  // `remaining`: how long the token has left; its connections end then.
  void finish_login(ConnectionId connection, std::string user_id, std::string name,
                    std::string token, std::string expires_at, std::chrono::milliseconds remaining,
                    Reply reply);
  void login_finished(ConnectionId connection, bool succeeded);
  void lookup_user(const std::string& where, const std::string& value, Reply reply);

  Host& host_;
  Database& db_;
  const Settings& settings_;
  AfterLogin after_login_;
  AfterLogout after_logout_;
  std::string
      dummy_hash_;  // verified against for unknown emails, so timing does not reveal accounts

  void clean_tokens();
  std::mutex cleanup_mutex_;
  std::shared_ptr<Timer> cleanup_timer_;  // null once stopped
  bool cleanup_stopped_ = false;
  AttemptLimiter registrations_;
  AttemptLimiter failed_by_address_;
  AttemptLimiter failed_by_account_address_;
  AttemptLimiter failed_by_account_;
  AttemptLimiter password_logins_by_address_;
  InFlightLimiter hashes_by_address_;
  InFlightLimiter hashes_by_account_;
  AttemptLimiter user_finds_;
  std::mutex mutex_;
  std::unordered_map<ConnectionId, std::string> token_hash_by_connection_;
  // When each logged-in connection's token expires (cancelled when it closes).
  std::unordered_map<ConnectionId, std::shared_ptr<Timer>> expiry_timers_;
  std::unordered_set<ConnectionId> logging_in_;
};

}  // namespace parley::session
