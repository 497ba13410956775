-- Schemas created by the user, and extensions (with the schema they live in).
SELECT 'schema' AS kind, n.nspname::text AS name, NULL::text AS schema, NULL::text AS version,
       pg_catalog.pg_get_userbyid(n.nspowner)::text AS owner
FROM pg_catalog.pg_namespace n
WHERE n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_namespace'::regclass AND d.objid = n.oid
                    AND d.deptype = 'e')
UNION ALL
SELECT 'extension', e.extname::text, n.nspname::text, e.extversion::text, NULL
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
ORDER BY 1, 2
