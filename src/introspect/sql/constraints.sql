-- Table constraints (PRIMARY KEY, UNIQUE, FOREIGN KEY, CHECK, EXCLUDE) and domain CHECKs.
-- Column names are resolved here so the Rust side needs no attnum maps.
SELECT con.conrelid AS rel,
       con.contypid AS typ,
       con.conname::text AS name,
       con.contype::text AS kind,
       con.condeferrable AS deferrable,
       con.condeferred AS deferred,
       con.convalidated AS validated,
       con.connoinherit AS no_inherit,
       con.conislocal AS is_local,
       con.conparentid <> 0 AS cloned,
       -- A CHECK a table had before it was attached as a partition is merged with the
       -- parent's: local and inherited at once, and the parent's all the same.
       (con.coninhcount > 0 AND EXISTS (SELECT 1 FROM pg_catalog.pg_class pc
                                        WHERE pc.oid = con.conrelid AND pc.relispartition)) AS partition_copy,
       pg_catalog.pg_get_constraintdef(con.oid) AS def,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord) AS columns,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord) AS ref_columns,
       rn.nspname::text AS ref_schema,
       r.relname::text AS ref_name,
       con.confdeltype::text AS on_delete,
       con.confupdtype::text AS on_update,
       con.confmatchtype::text AS match_type,
       -- INCLUDE columns of the index behind a PRIMARY KEY / UNIQUE constraint.
       ARRAY(SELECT a.attname::text
             FROM pg_catalog.pg_index i, unnest(i.indkey) WITH ORDINALITY k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attnum = k.num
             WHERE i.indexrelid = con.conindid AND a.attrelid = i.indrelid
               AND k.ord > i.indnkeyatts AND con.contype IN ('p', 'u')
             ORDER BY k.ord) AS include,
       coalesce((SELECT (to_jsonb(i) ->> 'indnullsnotdistinct')::boolean
                 FROM pg_catalog.pg_index i WHERE i.indexrelid = con.conindid
                   AND con.contype = 'u'), false) AS nulls_not_distinct
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace
LEFT JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE con.contype IN ('p', 'u', 'f', 'c', 'x')
  AND n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = con.conrelid
                    AND e.deptype = 'e')
ORDER BY con.conrelid, con.contypid, con.conname
