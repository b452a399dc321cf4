-- One random salt per UTC day for the visitor key (`api/src/clicks/visitor.rs`), shared by
-- every api instance so unique visitors within a day are exact, and deleted once its day
-- is over: a stored visitor key can then never be recomputed from an IP.
CREATE TABLE visitor_salts (
    day  DATE PRIMARY KEY,
    salt BYTEA NOT NULL CHECK (length(salt) = 32)
);
