{#- target is the object's identity as the model spells it (already SQL). An extension whose
    comment the schema does not state has the comment its control file gives it on CREATE
    EXTENSION, so "no comment" restores that one (read from the server for the installed
    version), not NULL; with the extension not installed there is none to restore. `name` is
    the extension's name, unquoted. -#}
{%- if kind == "extension" and text is not string -%}
DO $seqmig$ DECLARE c text; BEGIN SELECT v.comment INTO c FROM pg_catalog.pg_extension e LEFT JOIN pg_catalog.pg_available_extension_versions v ON v.name = e.extname AND v.version = e.extversion WHERE e.extname = {{ name | literal }}; IF FOUND THEN EXECUTE pg_catalog.format('COMMENT ON EXTENSION %I IS %L', {{ name | literal }}, c); END IF; END $seqmig$;
{%- else -%}
COMMENT ON {{ kind | upper }} {{ target }} IS {{ text | literal }};
{%- endif -%}
