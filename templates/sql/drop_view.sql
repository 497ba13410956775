DROP {% if materialized %}MATERIALIZED {% endif %}VIEW {% if if_exists %}IF EXISTS {% endif %}{{ view | ident }};
