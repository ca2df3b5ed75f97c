CREATE TABLE IF NOT EXISTS example_shouts (
  id         bigserial PRIMARY KEY,
  user_id    text NOT NULL,
  text       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
