-- Clicks carry their OS's family (iOS, iPadOS, Android, Windows, macOS, Linux, ChromeOS),
-- not the user-agent parser's name for it (iPhone, iPad, Windows 10, Mac OSX): people group
-- and filter by the family. Clicks stored before are rewritten here, so a user's own SQL
-- over `events` sees one name per family. The breakdown rollup's `os` is part of its
-- sorting key and cannot be rewritten: reads map it with the same expression
-- (`linktrace_domain::OS_FAMILY_SQL`), so old and new clicks group together there too.
--
-- Runs on ClickHouse 18.16 and current releases, as a mutation in the background; it
-- touches only rows that still carry a parser's name, so re-running it is a no-op.
ALTER TABLE events UPDATE os = multiIf(os IN ('iPhone', 'iPod'), 'iOS', os = 'iPad', 'iPadOS', os IN ('Mac OSX', 'Mac OS Classic'), 'macOS', os LIKE 'Windows Phone%', 'Windows Phone', os LIKE 'Windows%', 'Windows', os)
WHERE os IN ('iPhone', 'iPod', 'iPad', 'Mac OSX', 'Mac OS Classic') OR (os LIKE 'Windows%' AND os NOT IN ('Windows', 'Windows Phone'));
