-- Group conversations. The group plugin owns membership and roles; session
-- keeps, per group conversation g:G, its own delivery list in participants,
-- changed only through session_group_change(), which the group plugin calls
-- inside its own transaction.
ALTER TABLE participants
  ADD COLUMN joined_seq bigint NOT NULL DEFAULT 0,  -- the system message that added the member
  ADD COLUMN left_seq bigint;                       -- the one that removed them; NULL: a current member
ALTER TABLE conversations ADD COLUMN title text;   -- the group's name, the title of its pushes

-- Records a membership or role change of group p_group as a system message
-- written by p_actor, and applies it to the conversation's participants at
-- that message's seq. In p_body, {<user id>} stands for that user's name
-- and {title} for p_title; the text as stored is returned as body. It takes the conversation's counter row lock, the one
-- every send to g:G takes, so a send is ordered wholly before or after the
-- change: a message with a higher seq is written for the new member list.
CREATE FUNCTION session_group_change(p_group bigint, p_title text, p_actor bigint, p_body text,
                                     p_added bigint[], p_removed bigint[])
RETURNS TABLE (message_id bigint, seq bigint, created_at timestamptz, body text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_conversation text := 'g:' || p_group;
  -- Milliseconds, as the protocol shows timestamps, so the event and history agree.
  v_now timestamptz := date_trunc('milliseconds', clock_timestamp());
  v_seq bigint;
  v_id bigint;
  -- One pass over the placeholders, so a name that looks like one stays as it is.
  v_pattern constant text := '\{([0-9]{1,18}|title)\}';
  v_parts text[] := regexp_split_to_array(p_body, v_pattern);
  v_keys text[] := ARRAY(SELECT m[1] FROM regexp_matches(p_body, v_pattern, 'g') AS m);
  v_body text := v_parts[1];
BEGIN
  FOR i IN 1 .. coalesce(array_length(v_keys, 1), 0) LOOP
    v_body := v_body
      || CASE WHEN v_keys[i] = 'title' THEN coalesce(p_title, '')
              ELSE coalesce((SELECT u.name FROM users u WHERE u.id = v_keys[i]::bigint), v_keys[i]) END
      || v_parts[i + 1];
  END LOOP;

  INSERT INTO conversations AS c (id, last_seq, last_activity, title)
    VALUES (v_conversation, 1, v_now, p_title)
    ON CONFLICT (id) DO UPDATE
      SET last_seq = c.last_seq + 1, last_activity = v_now, title = coalesce(p_title, c.title)
    RETURNING c.last_seq INTO v_seq;

  INSERT INTO messages (conversation, seq, sender_id, group_id, body, event_type, created_at)
    VALUES (v_conversation, v_seq, p_actor, p_group, v_body, 'system', v_now)
    RETURNING id INTO v_id;

  -- Joiners start with everything before their join delivered and read, so
  -- older messages are neither pending nor unread for them; the system
  -- message that added them is.
  INSERT INTO participants AS p (conversation, user_id, joined_seq, left_seq, delivered_seq, read_seq)
    SELECT v_conversation, u, v_seq, NULL, v_seq - 1, v_seq - 1
    FROM unnest(coalesce(p_added, '{}'::bigint[])) AS u
    ON CONFLICT (conversation, user_id) DO UPDATE
      SET joined_seq = EXCLUDED.joined_seq, left_seq = NULL,
          delivered_seq = greatest(p.delivered_seq, EXCLUDED.delivered_seq),
          read_seq = greatest(p.read_seq, EXCLUDED.read_seq);

  UPDATE participants SET left_seq = v_seq
    WHERE conversation = v_conversation AND user_id = ANY (coalesce(p_removed, '{}'::bigint[]))
      AND left_seq IS NULL;

  RETURN QUERY SELECT v_id, v_seq, v_now, v_body;
END
$$;
