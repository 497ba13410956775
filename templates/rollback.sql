-- seqmig plan {{ plan_id }}
-- rollback of phase {{ number }}: {{ phase }}, steps in reverse order.
{% if phase == "contract" %}-- contract is the one-way door: `seqmig rollback` refuses it. This file is for a person who
-- must undo what of it can be undone, by hand (psql), knowing what the dropped data was.
{% else %}-- `seqmig rollback --phase {{ phase }}` does this and records it.
{% endif %}{% if runner %}{{ runner.prologue }}
{% endif %}{% for s in steps %}
-- undo step {{ s.id }} · change {{ s.change }}: {{ s.summary }}
{% if s.one_way -%}
-- step {{ s.id }} is one-way: it cannot be undone
{%- else -%}
{% if s.open_tx %}BEGIN;
{% endif %}{{ s.rollback_sql }}{% if s.record %}
{{ s.record }}{% endif %}{% if s.close_tx %}
COMMIT;{% endif %}
{%- endif %}
{% endfor -%}
{% if runner %}{{ runner.epilogue }}{% endif %}
