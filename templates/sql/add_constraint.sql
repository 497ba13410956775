ALTER TABLE {{ table | ident }} ADD CONSTRAINT {{ name | ident }} {{ definition }}{% if not_valid %} NOT VALID{% endif %};
