-- `conversations` pages a user's conversations newest activity first. The
-- order lived only in conversations.last_activity, so every page joined,
-- sorted and cut all of the user's conversations (and with the planner's
-- hash join, every conversation stored): one page of a user in 19,000
-- groups cost a quarter of a second. Each participant row now carries the
-- activity it is listed by, and the user's index holds it in page order, so
-- a page reads only its own rows.
--
-- A current member's row follows the conversation's last_activity. A
-- former group member's stops at the change that removed them: they see
-- the group as it was up to then, so it no longer rises in their list with
-- activity they cannot see.
ALTER TABLE participants ADD COLUMN last_activity timestamptz;

-- A former member's: when the message that removed them was written.
UPDATE participants p
  SET last_activity = coalesce(
    (SELECT m.created_at FROM messages m WHERE m.conversation = p.conversation AND m.seq = p.left_seq),
    c.last_activity)
  FROM conversations c WHERE c.id = p.conversation;
ALTER TABLE participants ALTER COLUMN last_activity SET NOT NULL;

-- Replaces the index on user_id alone: every lookup by user still starts
-- with it, and one index is written on each change instead of two.
DROP INDEX participants_user;
CREATE INDEX participants_user
  ON participants (user_id, last_activity DESC, conversation DESC);

-- Each activity (a message, a group change) moves its current members.
CREATE FUNCTION session_participants_follow_activity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE participants SET last_activity = NEW.last_activity
    WHERE conversation = NEW.id AND left_seq IS NULL;
  RETURN NULL;
END
$$;
CREATE TRIGGER participants_follow_activity
  AFTER UPDATE OF last_activity ON conversations
  FOR EACH ROW WHEN (NEW.last_activity IS DISTINCT FROM OLD.last_activity)
  EXECUTE FUNCTION session_participants_follow_activity();

-- A row that joins, or joins again after leaving, starts at the
-- conversation's activity.
CREATE FUNCTION session_participant_takes_activity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.last_activity := (SELECT c.last_activity FROM conversations c WHERE c.id = NEW.conversation);
  RETURN NEW;
END
$$;
CREATE TRIGGER participant_takes_activity_on_join
  BEFORE INSERT ON participants
  FOR EACH ROW EXECUTE FUNCTION session_participant_takes_activity();
CREATE TRIGGER participant_takes_activity_on_return
  BEFORE UPDATE OF left_seq ON participants
  FOR EACH ROW WHEN (OLD.left_seq IS NOT NULL AND NEW.left_seq IS NULL)
  EXECUTE FUNCTION session_participant_takes_activity();
