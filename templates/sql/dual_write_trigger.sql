{#-
  Keeps {{ old }} (old shape) and {{ new }} (new shape) of one row in step while both
  releases run. up = new from old, down = old from new, both over NEW.
  The flag is read only when a statement wrote both sides and they disagree.
  The WHEN condition keeps seqmig's own backfill batches (SET LOCAL seqmig.backfill = 'on')
  out of PL/pgSQL altogether: PostgreSQL evaluates it without calling the function.
-#}
CREATE OR REPLACE FUNCTION {{ function | ident }}() RETURNS trigger
LANGUAGE plpgsql AS $seqmig$
BEGIN
    -- rows written by seqmig's backfill are already consistent: do not echo them
    IF current_setting('seqmig.backfill', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.{{ new | ident }} IS NULL THEN
            NEW.{{ new | ident }} := {{ up }};
        ELSIF NEW.{{ old | ident }} IS NULL THEN
            {% if down %}NEW.{{ old | ident }} := {{ down }};{% else %}NULL; -- no down expression: the old column is not filled{% endif %}
        ELSIF NEW.{{ new | ident }} IS DISTINCT FROM ({{ up }}) THEN
            IF seqmig.flag({{ flag | literal }}) = 'new' THEN
                {% if down %}NEW.{{ old | ident }} := {{ down }};{% else %}NULL;{% endif %}
            ELSE
                NEW.{{ new | ident }} := {{ up }};
            END IF;
        END IF;
    ELSIF NEW.{{ old | ident }} IS DISTINCT FROM OLD.{{ old | ident }} THEN
        IF NEW.{{ new | ident }} IS NOT DISTINCT FROM OLD.{{ new | ident }} THEN
            NEW.{{ new | ident }} := {{ up }};
        ELSIF NEW.{{ new | ident }} IS DISTINCT FROM ({{ up }}) THEN
            IF seqmig.flag({{ flag | literal }}) = 'new' THEN
                {% if down %}NEW.{{ old | ident }} := {{ down }};{% else %}NULL;{% endif %}
            ELSE
                NEW.{{ new | ident }} := {{ up }};
            END IF;
        END IF;
    ELSIF NEW.{{ new | ident }} IS DISTINCT FROM OLD.{{ new | ident }} THEN
        {% if down %}NEW.{{ old | ident }} := {{ down }};{% else %}NULL;{% endif %}
    END IF;
    RETURN NEW;
END
$seqmig$;
{%- if with_trigger %}
CREATE TRIGGER {{ trigger | ident }} BEFORE INSERT OR UPDATE OF {{ old | ident }}, {{ new | ident }} ON {{ table | ident }}
    FOR EACH ROW WHEN (current_setting('seqmig.backfill', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {{ function | ident }}();
{%- endif %}
