-- Link domains (spec, "Attribution to the app"): an account serves its links on domains of
-- its own once each is verified (a DNS TXT record with its token, or the operator). A
-- domain is held by one account at a time; a link may name one of its account's domains.
CREATE TABLE link_domains (
    domain             TEXT PRIMARY KEY,
    account_id         UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    verification_token TEXT NOT NULL,
    verified_at        TIMESTAMPTZ,
    verified_by        TEXT CHECK (verified_by IN ('dns', 'operator')),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX link_domains_account ON link_domains (account_id, created_at);

-- A deleted domain leaves its links on the shared host.
ALTER TABLE links ADD COLUMN domain TEXT REFERENCES link_domains (domain) ON DELETE SET NULL;
