-- What each view and materialized view reads: relations and columns its rewrite rule
-- depends on (column 0 = the relation as a whole).
SELECT DISTINCT r.ev_class AS view, tn.nspname::text AS schema, t.relname::text AS name,
       CASE WHEN d.refobjsubid > 0 THEN a.attname::text END AS col
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
JOIN pg_catalog.pg_class t ON d.refclassid = 'pg_catalog.pg_class'::regclass AND t.oid = d.refobjid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
WHERE v.relkind IN ('v', 'm') AND t.oid <> r.ev_class AND d.deptype = 'n'
ORDER BY 1, 2, 3, 4
