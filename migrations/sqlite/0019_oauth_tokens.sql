-- OAuth2 refresh tokens stored by `servicedesk oauth login`, one per
-- client and account (`{client_id} {username}`), shared by every daemon on
-- this database. A rotated refresh token replaces the stored one.
CREATE TABLE oauth_tokens (
    name          TEXT PRIMARY KEY,
    refresh_token TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
