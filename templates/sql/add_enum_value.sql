ALTER TYPE {{ name | ident }} ADD VALUE IF NOT EXISTS {{ value | literal }}{% if before %} BEFORE {{ before | literal }}{% elif after %} AFTER {{ after | literal }}{% endif %};
