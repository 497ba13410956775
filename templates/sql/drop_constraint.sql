ALTER TABLE {{ table | ident }} DROP CONSTRAINT {% if if_exists %}IF EXISTS {% endif %}{{ name | ident }};
