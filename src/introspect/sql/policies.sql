-- Row-level security: tables with it enabled or forced, and their policies in pieces.
SELECT 'policy' AS what, pol.polname::text AS name, n.nspname::text AS schema,
       c.relname::text AS table_name, pol.polpermissive AS permissive, pol.polcmd::text AS cmd,
       CASE WHEN pol.polroles = '{0}' THEN NULL
            ELSE pg_catalog.array_to_string(ARRAY(
                   SELECT pg_catalog.quote_ident(r.rolname) FROM pg_catalog.pg_roles r
                   WHERE r.oid = ANY (pol.polroles) ORDER BY r.rolname), ', ') END AS roles,
       pg_catalog.pg_get_expr(pol.polqual, pol.polrelid) AS qual,
       pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid) AS with_check,
       false AS forced
FROM pg_catalog.pg_policy pol
JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> ALL ($1::text[])
UNION ALL
SELECT 'rls', NULL, n.nspname::text, c.relname::text, true, NULL, NULL, NULL, NULL,
       c.relforcerowsecurity
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relrowsecurity
  AND n.nspname <> ALL ($1::text[])
ORDER BY 1, 3, 4, 2
