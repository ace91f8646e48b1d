-- Key rotation: at most one key waits as `next` (published, not yet signing), even when
-- several replicas race to create it. Lockstep with postgres/0004.
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
