-- Rules, casts and extended statistics defined by the user, as their CREATE statements.
SELECT 'rule' AS kind, r.rulename::text AS name, n.nspname::text AS schema,
       c.relname::text AS table_name, pg_catalog.pg_get_ruledef(r.oid) AS def
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN'
  AND n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
UNION ALL
SELECT 'cast', pg_catalog.format_type(ca.castsource, NULL) || ' AS ' || pg_catalog.format_type(ca.casttarget, NULL),
       NULL, NULL,
       'CREATE CAST (' || pg_catalog.format_type(ca.castsource, NULL) || ' AS '
         || pg_catalog.format_type(ca.casttarget, NULL) || ') '
         || CASE ca.castmethod WHEN 'f' THEN 'WITH FUNCTION ' || ca.castfunc::regprocedure::text
                               WHEN 'i' THEN 'WITH INOUT' ELSE 'WITHOUT FUNCTION' END
         || CASE ca.castcontext WHEN 'a' THEN ' AS ASSIGNMENT' WHEN 'i' THEN ' AS IMPLICIT' ELSE '' END
FROM pg_catalog.pg_cast ca
WHERE ca.oid >= 16384
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = ca.oid
                    AND d.deptype = 'e')
UNION ALL
SELECT 'statistics', s.stxname::text, n.nspname::text, NULL,
       pg_catalog.pg_get_statisticsobjdef(s.oid)
FROM pg_catalog.pg_statistic_ext s
JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
WHERE n.nspname <> ALL ($1::text[])
UNION ALL
SELECT 'publication', p.pubname::text, NULL, NULL,
       'CREATE PUBLICATION ' || pg_catalog.quote_ident(p.pubname)
         || CASE WHEN p.puballtables THEN ' FOR ALL TABLES' ELSE '' END
FROM pg_catalog.pg_publication p
ORDER BY 1, 3, 4, 2
