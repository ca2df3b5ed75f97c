-- Conversations, their participants' watermarks, and messages.
CREATE TABLE conversations (
  id            text PRIMARY KEY,       -- d:A:B (1:1, A < B as strings) or g:G (group)
  last_seq      bigint NOT NULL DEFAULT 0,
  last_activity timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE participants (
  conversation  text NOT NULL REFERENCES conversations (id),
  user_id       bigint NOT NULL,
  delivered_seq bigint NOT NULL DEFAULT 0,
  read_seq      bigint NOT NULL DEFAULT 0,
  delivered_at  timestamptz,            -- when delivered_seq last moved
  read_at       timestamptz,            -- when read_seq last moved
  PRIMARY KEY (conversation, user_id)
);
CREATE INDEX participants_user ON participants (user_id);

CREATE TABLE messages (
  id            bigserial PRIMARY KEY,
  conversation  text NOT NULL,
  seq           bigint NOT NULL,
  sender_id     bigint NOT NULL,
  recipient_id  bigint,                 -- 1:1 only
  group_id      bigint,                 -- group only
  body          text NOT NULL,
  event_type    text NOT NULL DEFAULT 'user',
  client_msg_id text,
  created_at    timestamptz NOT NULL,
  UNIQUE (conversation, seq)
);
-- send is idempotent per (sender, client_msg_id).
CREATE UNIQUE INDEX messages_client_msg_id ON messages (sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL;
