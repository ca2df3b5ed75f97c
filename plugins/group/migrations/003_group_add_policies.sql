-- Who may add a user to groups (the group.privacy request, an extension of
-- protocol-v1): 'anyone', protocol-v1's rule, or 'contacts', the users they
-- have exchanged a 1:1 message with (asked of session.contacts). A user
-- without a row: anyone.
CREATE TABLE group_add_policies (
  user_id bigint PRIMARY KEY,
  adds    text NOT NULL CHECK (adds IN ('anyone', 'contacts'))
);
