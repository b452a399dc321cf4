-- Redirect rules and click caps (spec, "Links at scale"; api/src/link_rules.rs).
-- `rules`: the ordered list of {country?, device?, os?, language?, url}.
-- `max_clicks`: after that many counted clicks the link answers as an expired one;
-- `exhausted_at`: when it reached them (set once by the click that did, so the change
-- notification tells every instance's cache once, not on every click).
ALTER TABLE links ADD COLUMN rules JSONB NOT NULL DEFAULT '[]';
ALTER TABLE links ADD COLUMN max_clicks BIGINT CHECK (max_clicks > 0);
ALTER TABLE links ADD COLUMN exhausted_at TIMESTAMPTZ;

-- Counted clicks of capped links, apart from `links` so that a click never touches the row
-- whose every change is announced to every cache.
CREATE TABLE link_click_counts (
    short_code TEXT PRIMARY KEY REFERENCES links (short_code) ON DELETE CASCADE ON UPDATE CASCADE,
    counted BIGINT NOT NULL
);
