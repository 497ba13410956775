{#- One short transaction: the new column takes the name, the old one steps aside. -#}
ALTER TABLE {{ table | ident }} RENAME COLUMN {{ column | ident }} TO {{ parked | ident }};
ALTER TABLE {{ table | ident }} RENAME COLUMN {{ shadow | ident }} TO {{ column | ident }};
