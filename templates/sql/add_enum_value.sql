ALTER TYPE {{ name | ident }} ADD VALUE {{ value | literal }}{% if before %} BEFORE {{ before | literal }}{% elif after %} AFTER {{ after | literal }}{% endif %};
