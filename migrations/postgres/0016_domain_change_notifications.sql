-- A link domain added, verified, moved or removed is announced on `linktrace_changes` as
-- `domains:<domain>` when its transaction commits, so every api instance forgets which
-- account serves that host at once (api::domains::DomainOwners), not at the end of a TTL.
-- Rows removed with their account (ON DELETE CASCADE) are announced too.
CREATE FUNCTION linktrace_notify_domain_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('linktrace_changes', 'domains:' || OLD.domain);
    ELSE
        PERFORM pg_notify('linktrace_changes', 'domains:' || NEW.domain);
        IF TG_OP = 'UPDATE' AND OLD.domain <> NEW.domain THEN
            PERFORM pg_notify('linktrace_changes', 'domains:' || OLD.domain);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER link_domains_changed AFTER INSERT OR UPDATE OR DELETE ON link_domains
    FOR EACH ROW EXECUTE FUNCTION linktrace_notify_domain_change();
