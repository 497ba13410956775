-- Sequences, except those behind identity columns (they belong to their column), with the
-- column that owns them (ALTER SEQUENCE … OWNED BY).
SELECT n.nspname::text AS schema,
       c.relname::text AS name,
       pg_catalog.format_type(s.seqtypid, NULL) AS type,
       s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max,
       s.seqcache AS cache, s.seqcycle AS cycle, c.relpersistence::text AS persistence,
       own.schema AS owner_schema, own.name AS owner_table, own.col AS owner_column
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
  SELECT tn.nspname::text AS schema, t.relname::text AS name, a.attname::text AS col
  FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
    AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'a'
  LIMIT 1) own ON true
WHERE n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('e', 'i'))
ORDER BY n.nspname, c.relname
