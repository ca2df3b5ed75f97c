-- When each user last sent anything, kept across restarts. Written in
-- batches (one multi-row upsert per flush interval), never per frame.
CREATE TABLE presence_last_active (
  user_id text PRIMARY KEY,
  last_active timestamptz NOT NULL
);
