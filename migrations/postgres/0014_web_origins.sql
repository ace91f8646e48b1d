-- Web origins of a client's browser app (CORS on /token, /revoke, /userinfo).
-- Lockstep with sqlite/0014. NULL: derived from the redirect URIs (https and loopback
-- http ones), so existing clients get the origins of their redirect URIs; a JSON array:
-- registered explicitly (possibly empty: no browser app at all).
ALTER TABLE clients ADD COLUMN web_origins JSONB;
