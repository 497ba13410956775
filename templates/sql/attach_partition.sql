ALTER TABLE {{ parent | ident }} ATTACH PARTITION {{ table | ident }} {{ bound }};
