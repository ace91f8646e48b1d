-- The admin API lists clients a page at a time in registration order (keyset
-- pagination on created_at, id): this index serves each page without a sort.
CREATE INDEX clients_created_at_id ON clients (created_at, id);
