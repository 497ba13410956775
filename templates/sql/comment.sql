{#- target is the object's identity as the model spells it (already SQL) -#}
COMMENT ON {{ kind | upper }} {{ target }} IS {{ text | literal }};
