-- Repeated clicks (`api/src/clicks/repeats.rs`): per link and visitor key, when the last
-- counted click was. A click within the hour after it is a repeat. Rows of closed windows
-- are swept by the api.
CREATE TABLE click_windows (
    short_code TEXT NOT NULL,
    visitor    TEXT NOT NULL,
    counted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (short_code, visitor)
);
CREATE INDEX click_windows_age ON click_windows (counted_at);
