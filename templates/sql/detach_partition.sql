ALTER TABLE {{ parent | ident }} DETACH PARTITION {{ table | ident }}{% if concurrently %} CONCURRENTLY{% endif %};
