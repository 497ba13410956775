CREATE {% if unlogged %}UNLOGGED {% endif %}TABLE {{ table | ident }}{% if partition_of %} PARTITION OF {{ partition_of | ident }}{% if constraints %} (
{%- for c in constraints %}
    CONSTRAINT {{ c.name | ident }} {{ c.definition }}{% if not loop.last %},{% endif %}
{%- endfor %}
){% endif %} {{ bound }}{% else %} (
{%- for c in columns %}
    {{ c.name | ident }} {{ c.type }}{% if c.collation %} COLLATE {{ c.collation }}{% endif %}{% if c.default %} DEFAULT {{ c.default }}{% endif %}{% if c.generated %} GENERATED ALWAYS AS ({{ c.generated }}){% if c.generated_stored %} STORED{% else %} VIRTUAL{% endif %}{% endif %}{% if c.identity %} GENERATED {{ c.identity }} AS IDENTITY{% endif %}{% if c.not_null %} NOT NULL{% endif %}{% if not loop.last or constraints %},{% endif %}
{%- endfor %}
{%- for c in constraints %}
    CONSTRAINT {{ c.name | ident }} {{ c.definition }}{% if not loop.last %},{% endif %}
{%- endfor %}
){% if inherits %} INHERITS ({{ inherits | ident }}){% endif %}{% endif %}{% if partition_key %} PARTITION BY {{ partition_key }}{% endif %}{% if options %} WITH ({{ options | join(sep=", ") }}){% endif %};
