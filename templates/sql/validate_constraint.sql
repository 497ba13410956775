ALTER TABLE {{ table | ident }} VALIDATE CONSTRAINT {{ name | ident }};
