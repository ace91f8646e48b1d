-- Introspection (RFC 7662 §4): the audiences a client serves as a resource server, whose
-- access tokens it may introspect, and whether it may introspect any token. Existing
-- clients get neither, so they see only their own tokens. Lockstep with postgres/0005.
ALTER TABLE clients ADD COLUMN served_audiences TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN may_introspect_any BOOLEAN NOT NULL DEFAULT FALSE;
