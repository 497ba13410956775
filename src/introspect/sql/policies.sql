-- Row-level security policies, in pieces (the switches are in relations.sql).
SELECT 'policy' AS what, pol.polname::text AS name, n.nspname::text AS schema,
       c.relname::text AS table_name, pol.polpermissive AS permissive, pol.polcmd::text AS cmd,
       CASE WHEN pol.polroles = '{0}' THEN NULL
            ELSE pg_catalog.array_to_string(ARRAY(
                   SELECT pg_catalog.quote_ident(r.rolname) FROM pg_catalog.pg_roles r
                   WHERE r.oid = ANY (pol.polroles) ORDER BY r.rolname), ', ') END AS roles,
       pg_catalog.pg_get_expr(pol.polqual, pol.polrelid) AS qual,
       pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid) AS with_check
FROM pg_catalog.pg_policy pol
JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> ALL ($1::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = pol.polrelid
                    AND e.deptype = 'e')
ORDER BY 3, 4, 2
