-- Every change to what ingest caches (links, keys, accounts, plans) is announced on the
-- channel `linktrace_changes`, so each instance forgets its copy at once instead of at the
-- end of a cache TTL (`platform::invalidation`). Payloads: `links:<short code>` for a link,
-- `keys` for anything that changes what an API key stands for. A notification is sent when
-- its transaction commits, never before.
CREATE FUNCTION linktrace_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'links' THEN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('linktrace_changes', 'links:' || OLD.short_code);
        ELSE
            PERFORM pg_notify('linktrace_changes', 'links:' || NEW.short_code);
            IF TG_OP = 'UPDATE' AND OLD.short_code <> NEW.short_code THEN
                PERFORM pg_notify('linktrace_changes', 'links:' || OLD.short_code);
            END IF;
        END IF;
    ELSE
        PERFORM pg_notify('linktrace_changes', 'keys');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER links_changed AFTER INSERT OR UPDATE OR DELETE ON links
    FOR EACH ROW EXECUTE FUNCTION linktrace_notify_change();
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION linktrace_notify_change();
CREATE TRIGGER accounts_changed AFTER UPDATE OR DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION linktrace_notify_change();
CREATE TRIGGER plans_changed AFTER UPDATE OR DELETE ON plans
    FOR EACH STATEMENT EXECUTE FUNCTION linktrace_notify_change();
