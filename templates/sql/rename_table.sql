{#- The table takes its new name; an updatable view keeps the old name working for the old release. -#}
ALTER TABLE {{ from | ident }} RENAME TO {{ to.name | ident }};
CREATE VIEW {{ from | ident }} AS SELECT * FROM {{ to | ident }};
