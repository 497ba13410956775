ALTER TABLE {{ table | ident }} ADD CONSTRAINT {{ name | ident }} CHECK ({{ expr }}){% if not_valid %} NOT VALID{% endif %};
