-- Hardening (lockstep with sqlite/0006):
-- * a login-stage request is no longer stored: it travels in the login form, signed
--   (login/signed_form.rs); what remains stored is the consent stage, tied to the SSO
--   session that reached it, one per session and client;
-- * codes record a replay, so a family started from a replayed code is never created;
-- * a user's credential change (password, disable) ends what was obtained before it;
-- * login throttling counts attempts in flight, reserved before the password check;
-- * every column housekeeping filters on is indexed.
DELETE FROM pending_authorizations;
ALTER TABLE pending_authorizations ADD COLUMN sid TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX pending_authorizations_session_client ON pending_authorizations (sid, client_id);
CREATE INDEX pending_authorizations_expires ON pending_authorizations (expires_at);

ALTER TABLE authorization_codes ADD COLUMN replayed_at TIMESTAMPTZ;
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_user ON authorization_codes (user_id);
CREATE INDEX authorization_codes_sid ON authorization_codes (sid);

ALTER TABLE users ADD COLUMN credentials_changed_at TIMESTAMPTZ;

ALTER TABLE login_throttles ADD COLUMN in_flight BIGINT NOT NULL DEFAULT 0;
CREATE INDEX login_throttles_window ON login_throttles (window_start);

CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX token_families_expires ON token_families (absolute_expires_at);
CREATE INDEX token_families_revoked ON token_families (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX refresh_tokens_sealed_until ON refresh_tokens (successor_sealed_until) WHERE successor_sealed_until IS NOT NULL;
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);
