-- Indexes that do not back a constraint (those come with their constraint), one row per
-- index; keys are described per position. Extension members are skipped.
SELECT n.nspname::text AS schema,
       ic.relname::text AS name,
       tn.nspname::text AS table_schema,
       tc.relname::text AS table_name,
       i.indisunique AS is_unique,
       coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct,
       am.amname::text AS method,
       i.indnkeyatts::int4 AS nkeys,
       ARRAY(SELECT CASE WHEN k.num = 0 THEN NULL ELSE a.attname::text END
             FROM unnest(i.indkey) WITH ORDINALITY k(num, ord)
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
             ORDER BY k.ord) AS attnames,
       ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k.ord::int4, false)
             FROM generate_series(1, i.indnatts) k(ord) ORDER BY k.ord) AS keydefs,
       -- Collation, operator class and ordering are read from the full definition, which
       -- prints each only when it is not the default for the key.
       pg_catalog.pg_get_indexdef(i.indexrelid) AS def,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
       coalesce(ic.reloptions, '{}')::text[] AS storage,
       -- ALTER INDEX … ALTER COLUMN n SET STATISTICS m, as 'n=m'.
       ARRAY(SELECT a.attnum::text || '=' || a.attstattarget::text
             FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0
             ORDER BY a.attnum) AS statistics
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
                  WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                    AND con.contype IN ('p', 'u', 'x'))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = ic.oid
                    AND d.deptype = 'e')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = i.indrelid
                    AND e.deptype = 'e')
ORDER BY n.nspname, ic.relname
