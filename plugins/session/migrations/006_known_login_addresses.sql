-- The addresses each account logged in from with its password, so that the
-- per-account limit on failed logins (limits.failed_logins_per_account_per_hour)
-- does not lock the owner out of the addresses they use: a stranger's guesses
-- from elsewhere use up the account's hour there only. Rows older than
-- limits.known_login_address_days are deleted at the account's next
-- password login.
CREATE TABLE known_login_addresses (
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  address    text COLLATE "C" NOT NULL,  -- IPv4, or an IPv6 address's /64, as the limits count it
  last_login timestamptz NOT NULL,
  PRIMARY KEY (user_id, address)
);
