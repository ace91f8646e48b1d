-- Optimistic concurrency for the admin API's read-change-write of clients and users: an
-- update writes only if the row is still at the revision it read (and bumps it), so two
-- concurrent PATCHes cannot silently undo each other's change.
ALTER TABLE clients ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
