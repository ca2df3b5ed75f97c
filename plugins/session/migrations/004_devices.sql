-- Push devices (device.register): a token belongs to one user at a time.
CREATE TABLE devices (
  token         text PRIMARY KEY,
  user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  platform      text NOT NULL,
  -- Moved by every registration of the token: the oldest is evicted first
  -- when a user passes push.max_devices_per_user.
  registered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_user ON devices (user_id, registered_at);
