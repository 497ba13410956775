-- User triggers (not the internal ones behind foreign keys, not the clones a partition
-- inherits from its parent's trigger).
SELECT t.tgname::text AS name, n.nspname::text AS schema, c.relname::text AS table_name,
       pg_catalog.pg_get_triggerdef(t.oid, false) AS def
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal
  AND coalesce((to_jsonb(t) ->> 'tgparentid')::oid, 0) = 0
  AND n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = t.tgrelid
                    AND e.deptype = 'e')
ORDER BY n.nspname, c.relname, t.tgname
