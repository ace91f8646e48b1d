-- Per-source bounds on what public clients' requests store. Lockstep with postgres/0017.
-- A public client's id is all a stranger needs to push a request or ask for a device code,
-- so besides the per-client bound each such row records its source: the SHA-256 of the
-- client IP's network (the address for IPv4, the /64 for IPv6). Hashed so the rows show
-- no addresses at a glance; not secret (2^32 IPv4 addresses are quickly tried), and gone
-- when the row expires (minutes).
-- The insert counts a client's unexpired rows from one source and refuses past
-- par.max_per_ip / device.max_per_ip. NULL for confidential clients (not counted).

ALTER TABLE pushed_authorization_requests ADD COLUMN source_digest TEXT;
ALTER TABLE device_codes ADD COLUMN source_digest TEXT;
CREATE INDEX pushed_authorization_requests_source
    ON pushed_authorization_requests (client_id, source_digest, expires_at);
CREATE INDEX device_codes_source ON device_codes (client_id, source_digest, expires_at);
