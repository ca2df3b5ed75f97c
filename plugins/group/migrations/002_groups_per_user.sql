-- How many groups each user is a current member of, for max_groups_per_user:
-- a change locks the rows of the users it adds or removes (in user id
-- order, so concurrent changes cannot deadlock) and compares one number per
-- user, instead of counting every user's memberships under a lock.
CREATE TABLE group_counts (
  user_id bigint PRIMARY KEY,
  groups  integer NOT NULL CHECK (groups >= 0)
);
INSERT INTO group_counts (user_id, groups)
  SELECT user_id, count(*) FROM group_members GROUP BY user_id;

-- group.list pages a user's groups in group id order from this index.
DROP INDEX group_members_user;
CREATE INDEX group_members_user ON group_members (user_id, group_id);
