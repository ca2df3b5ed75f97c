-- Accounts and login sessions.
CREATE TABLE users (
  id            bigserial PRIMARY KEY,
  email         text NOT NULL,
  name          text NOT NULL,
  password_hash text NOT NULL,          -- Argon2id, libsodium crypto_pwhash_str format
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- When the user's last connection closed; NULL while connected. Receipts
  -- that moved after it are sent at the next login.
  offline_since timestamptz DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE session_tokens (
  token_hash bytea PRIMARY KEY,         -- BLAKE2b of the token; the token itself is never stored
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX session_tokens_user ON session_tokens (user_id);
