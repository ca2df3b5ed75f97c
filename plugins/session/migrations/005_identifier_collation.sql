-- Conversation ids, client_msg_ids and device tokens are identifiers, not
-- words: their indexes compare them byte by byte (COLLATE "C"). The
-- database's default collation would call strcoll() on every comparison of
-- every index insert and lookup (the send path does several per message)
-- and order them no more usefully. Equality is unchanged: every collation
-- used here is deterministic.
-- Changing only the collation rewrites no table; the indexes on these
-- columns are rebuilt, under a lock, once.
ALTER TABLE participants ALTER COLUMN conversation TYPE text COLLATE "C";
ALTER TABLE conversations ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE messages
  ALTER COLUMN conversation TYPE text COLLATE "C",
  ALTER COLUMN client_msg_id TYPE text COLLATE "C";
ALTER TABLE devices ALTER COLUMN token TYPE text COLLATE "C";
