-- Functions, procedures and aggregates of user schemas, in pieces from which pg_dump's
-- CREATE statement is rebuilt (so a catalog and a pg_dump file give the same text).
-- prosqlbody (SQL-standard bodies, 14+) is read through to_jsonb so 13 can run this too;
-- such functions take their whole text from pg_get_functiondef.
SELECT p.oid,
       n.nspname::text AS schema,
       p.proname::text AS name,
       p.prokind::text AS kind,
       ARRAY(SELECT pg_catalog.format_type(t.oid, NULL)
             FROM unnest(p.proargtypes) WITH ORDINALITY u(typ, ord)
             JOIN pg_catalog.pg_type t ON t.oid = u.typ ORDER BY u.ord) AS arg_types,
       pg_catalog.pg_get_function_arguments(p.oid) AS args,
       pg_catalog.pg_get_function_result(p.oid) AS result,
       l.lanname::text AS language,
       p.provolatile::text AS volatility,
       p.proisstrict AS strict,
       p.prosecdef AS security_definer,
       p.proleakproof AS leakproof,
       p.proparallel::text AS parallel,
       p.procost::text AS cost,
       p.prorows::text AS rows,
       p.proretset AS returns_set,
       CASE WHEN p.prosupport <> 0 THEN p.prosupport::regproc::text END AS support,
       coalesce(p.proconfig, '{}')::text[] AS config,
       p.prosrc AS src,
       p.probin AS bin,
       (to_jsonb(p) ->> 'prosqlbody') IS NOT NULL AS sql_body,
       CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_catalog.pg_get_functiondef(p.oid) END AS functiondef,
       pg_catalog.pg_get_userbyid(p.proowner)::text AS owner
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                    AND d.deptype = 'e')
ORDER BY n.nspname, p.proname, p.oid
