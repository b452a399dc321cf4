-- Attribution to the app (spec, "Attribution to the app"): a link's own attribution window,
-- matches by Google Play's install referrer, and each attribution's evidence (kept, so a
-- repeated request answers with the original's).
ALTER TABLE links
    ADD COLUMN attribution_window_hours INT
        CHECK (attribution_window_hours BETWEEN 1 AND 720);

ALTER TABLE attributions DROP CONSTRAINT attributions_match_type_check;
ALTER TABLE attributions ADD CONSTRAINT attributions_match_type_check
    CHECK (match_type IN ('install_referrer', 'short_code', 'click_id', 'fingerprint', 'organic'));
ALTER TABLE attributions ADD COLUMN evidence JSONB;
