ALTER TABLE {{ table | ident }} DROP COLUMN {% if if_exists %}IF EXISTS {% endif %}{{ column | ident }};
