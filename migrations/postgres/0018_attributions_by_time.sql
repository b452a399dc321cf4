-- Installs by how they were matched, over a range (GET /api/v1/attributions/match-types,
-- the dashboard's panel): one index range per account and environment.
CREATE INDEX attributions_by_time ON attributions (account_id, environment, created_at);
