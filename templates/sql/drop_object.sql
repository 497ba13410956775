{#- target is the object's identity as the model spells it (already SQL) -#}
DROP {{ kind }} {% if if_exists %}IF EXISTS {% endif %}{{ target }};
