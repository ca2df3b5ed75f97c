// The session plugin's configuration (its block in parley.yaml).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace parley::session {

struct Settings {
  std::chrono::seconds token_ttl{30 * 24 * 3600};
  // Live (neither expired nor revoked) tokens per user; a password login
  // past it revokes the oldest, so that logins cannot grow the table
  // without end.
  std::size_t max_tokens_per_user = 100;
  // Argon2id cost (libsodium crypto_pwhash_str). Defaults: libsodium's
  // "interactive" level.
  std::uint64_t password_ops_limit = 2;
  std::size_t password_mem_limit_bytes = 64u << 20;
  // Longest accepted message, in Unicode code points.
  std::size_t max_message_length = 4000;
  // Messages written per transaction at most.
  std::size_t write_batch_max = 1000;
  // Bytes of sends waiting for the writer, for the whole server, at most;
  // past it a send is refused at once instead of growing the queue.
  std::size_t write_queue_max_bytes = 64u << 20;
  // Push notifications: show the text, or only `push_generic_text`.
  bool push_show_content = true;
  std::string push_generic_text = "New message";
  // Caps per source address (an IPv6 address counts as its /64) and per
  // account at an address, generous enough for a household or office behind
  // one NAT.
  std::int64_t registrations_per_address = 100;         // per hour
  std::int64_t failed_logins_per_address = 200;         // per 15 minutes
  std::int64_t failed_logins_per_account_address = 20;  // per 15 minutes
  // Failed password logins of one account from all addresses together, per
  // hour: past it the account's password logins are refused until the
  // window ends (its token logins still work).
  std::int64_t failed_logins_per_account = 100;
  // ... except from an address the account logged in from with its password
  // within this many days (0: no exception): a stranger's guesses from
  // elsewhere do not lock the owner out where they usually log in. Longer
  // than token_ttl, so that an address is still known when the token the
  // password login gave runs out and the password is needed again.
  std::int64_t known_login_address_days = 90;
  // Password logins from one address, per 15 minutes, whether they succeed
  // or not: each costs a hash. Token logins are not counted.
  std::int64_t password_logins_per_address = 1000;
  // Password hashes (register, password login) queued or running at once
  // for one address and for one account: one client cannot fill the shared
  // hashing queue (cpu_queue_limit) and shut everyone else out.
  std::int64_t hashes_at_once_per_address = 4;
  std::int64_t hashes_at_once_per_account = 2;
  // user.find per logged-in user per minute: it tells whether an email has
  // an account, which login itself never reveals.
  std::int64_t user_finds_per_minute = 30;
  // Push devices (devices.cpp): the platforms device.register accepts, and
  // limits on what one user may register.
  std::vector<std::string> push_platforms{"fcm", "apns"};
  std::size_t push_max_devices_per_user = 10;
  std::size_t push_max_token_bytes = 4096;
};

}  // namespace parley::session
