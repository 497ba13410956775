-- Rules, casts and extended statistics defined by the user, as their CREATE statements, with
-- the table a rule or statistics object is on (table_schema: a statistics object's table may
-- be in another schema than the object).
SELECT 'rule' AS kind, r.rulename::text AS name, n.nspname::text AS schema,
       c.relname::text AS table_name, pg_catalog.pg_get_ruledef(r.oid) AS def,
       NULL AS table_schema
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN'
  AND n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = r.ev_class
                    AND e.deptype = 'e')
UNION ALL
SELECT 'cast', pg_catalog.format_type(ca.castsource, NULL) || ' AS ' || pg_catalog.format_type(ca.casttarget, NULL),
       NULL, NULL,
       'CREATE CAST (' || pg_catalog.format_type(ca.castsource, NULL) || ' AS '
         || pg_catalog.format_type(ca.casttarget, NULL) || ') '
         || CASE ca.castmethod WHEN 'f' THEN 'WITH FUNCTION ' || ca.castfunc::regprocedure::text
                               WHEN 'i' THEN 'WITH INOUT' ELSE 'WITHOUT FUNCTION' END
         || CASE ca.castcontext WHEN 'a' THEN ' AS ASSIGNMENT' WHEN 'i' THEN ' AS IMPLICIT' ELSE '' END,
       NULL
FROM pg_catalog.pg_cast ca
WHERE ca.oid >= 16384
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = ca.oid
                    AND d.deptype = 'e')
UNION ALL
SELECT 'statistics', s.stxname::text, n.nspname::text, t.relname::text,
       pg_catalog.pg_get_statisticsobjdef(s.oid),
       tn.nspname::text
FROM pg_catalog.pg_statistic_ext s
JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
JOIN pg_catalog.pg_class t ON t.oid = s.stxrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
WHERE n.nspname <> ALL ($1::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_statistic_ext'::regclass AND e.objid = s.oid
                    AND e.deptype = 'e')
UNION ALL
-- pg_dump's CREATE OPERATOR layout (dumpOpr).
SELECT 'operator', o.oprname::text, n.nspname::text, NULL,
       'CREATE OPERATOR ' || pg_catalog.quote_ident(n.nspname) || '.' || o.oprname || ' (' || E'\n'
         || '    FUNCTION = ' || o.oprcode::regproc::text
         || CASE WHEN o.oprleft <> 0 THEN E',\n    LEFTARG = ' || pg_catalog.format_type(o.oprleft, NULL) ELSE '' END
         || CASE WHEN o.oprright <> 0 THEN E',\n    RIGHTARG = ' || pg_catalog.format_type(o.oprright, NULL) ELSE '' END
         || coalesce((SELECT E',\n    COMMUTATOR = OPERATOR(' || pg_catalog.quote_ident(cn.nspname) || '.' || c.oprname || ')'
                      FROM pg_catalog.pg_operator c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace
                      WHERE c.oid = o.oprcom), '')
         || coalesce((SELECT E',\n    NEGATOR = OPERATOR(' || pg_catalog.quote_ident(cn.nspname) || '.' || c.oprname || ')'
                      FROM pg_catalog.pg_operator c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace
                      WHERE c.oid = o.oprnegate), '')
         || CASE WHEN o.oprcanmerge THEN E',\n    MERGES' ELSE '' END
         || CASE WHEN o.oprcanhash THEN E',\n    HASHES' ELSE '' END
         || CASE WHEN o.oprrest <> 0 THEN E',\n    RESTRICT = ' || o.oprrest::regproc::text ELSE '' END
         || CASE WHEN o.oprjoin <> 0 THEN E',\n    JOIN = ' || o.oprjoin::regproc::text ELSE '' END
         || E'\n)',
       NULL
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
WHERE n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_operator'::regclass AND e.objid = o.oid
                    AND e.deptype = 'e')
UNION ALL
SELECT 'publication', p.pubname::text, NULL, NULL,
       'CREATE PUBLICATION ' || pg_catalog.quote_ident(p.pubname)
         || CASE WHEN p.puballtables THEN ' FOR ALL TABLES' ELSE '' END,
       NULL
FROM pg_catalog.pg_publication p
ORDER BY 1, 3, 4, 2
