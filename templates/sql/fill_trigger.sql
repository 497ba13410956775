{#- Gives {{ column }} a value on rows written by a release that does not know the column yet.
    The WHEN condition calls the function only for rows that need it (never for the backfill's). -#}
CREATE OR REPLACE FUNCTION {{ function | ident }}() RETURNS trigger
LANGUAGE plpgsql AS $seqmig$
BEGIN
    IF NEW.{{ column | ident }} IS NULL THEN
        NEW.{{ column | ident }} := {{ fill }};
    END IF;
    RETURN NEW;
END
$seqmig$;
CREATE TRIGGER {{ trigger | ident }} BEFORE INSERT OR UPDATE OF {{ column | ident }} ON {{ table | ident }}
    FOR EACH ROW WHEN (NEW.{{ column | ident }} IS NULL) EXECUTE FUNCTION {{ function | ident }}();
