-- Web origins of a client's browser app (CORS on /token, /revoke, /userinfo).
-- Lockstep with postgres/0014. NULL: derived from the redirect URIs (https and loopback
-- http ones), so existing clients get the origins of their redirect URIs; a JSON array:
-- registered explicitly (possibly empty: no browser app at all).
ALTER TABLE clients ADD COLUMN web_origins TEXT;
-- A first-party single-page app: its refresh token is set in an HttpOnly cookie scoped to
-- the token endpoint instead of the JSON body.
ALTER TABLE clients ADD COLUMN first_party_spa BOOLEAN NOT NULL DEFAULT FALSE;
