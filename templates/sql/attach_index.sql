ALTER INDEX {{ parent | ident }} ATTACH PARTITION {{ child | ident }};
