-- seqmig plan {{ plan_id }}
-- rollback of phase {{ number }}: {{ phase }}, steps in reverse order.
-- `seqmig rollback --phase {{ phase }}` does this and records it.
{% for s in steps %}
-- undo step {{ s.id }} · change {{ s.change }}: {{ s.summary }}
{% if s.one_way -%}
-- step {{ s.id }} is one-way: it cannot be undone
{%- else -%}
{{ s.rollback_sql }}
{%- endif %}
{% endfor -%}
