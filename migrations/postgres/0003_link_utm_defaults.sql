-- A link's default UTM values ({"source": …, "medium": …, …}): recorded with a click and
-- merged into the destination when the followed URL does not carry its own.
ALTER TABLE links ADD COLUMN utm JSONB NOT NULL DEFAULT '{}'::jsonb;
