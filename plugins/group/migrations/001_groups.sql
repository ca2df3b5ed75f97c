-- Groups and their members. The conversation g:<id>, its messages and its
-- delivery list belong to the session plugin (see session_group_change()).
CREATE TABLE groups (
  id         bigserial PRIMARY KEY,
  name       text NOT NULL,
  created_by bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Set when the last member left; an ended group is unknown to every request.
  ended_at   timestamptz
);

CREATE TABLE group_members (
  group_id   bigint NOT NULL REFERENCES groups (id),
  user_id    bigint NOT NULL,
  role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  -- Increasing within a group in the order members joined (members of one
  -- request in the order listed); ownership passes by it.
  join_order bigint NOT NULL,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);
