-- Push deliveries in flight (leased), looked up per stream and per receiver at every claim
-- so that one stream or receiver cannot hold more than its share (signals::push).
CREATE INDEX ssf_deliveries_in_flight ON ssf_deliveries (leased_until) WHERE leased_until IS NOT NULL;
