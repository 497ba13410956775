DROP TABLE {% if if_exists %}IF EXISTS {% endif %}{{ table | ident }};
