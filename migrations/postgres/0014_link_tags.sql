-- Tags on links (spec, "Links at scale"): up to 10 per link; the link list filters by one,
-- and analytics v2 reads the links a tag covers.
ALTER TABLE links ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}';
CREATE INDEX links_tags ON links USING GIN (tags);
