-- seqmig plan {{ plan_id }}
-- phase {{ number }}: {{ phase }} ({{ steps | length }} step{% if steps | length != 1 %}s{% endif %})
-- Run the steps in order. A step marked "outside a transaction" must not be wrapped in
-- BEGIN/COMMIT; `seqmig apply --phase {{ phase }}` does all of this and records it.
{% if runner %}{{ runner.prologue }}
{% endif %}{% for s in steps %}
-- step {{ s.id }} · change {{ s.change }}: {{ s.summary }}
-- lock: {% if s.lock_each %}{% for l in s.lock_each %}{{ l.mode }} on {{ l.relation }}{% if not loop.last %}, {% endif %}{% endfor %}{% else %}{{ s.lock }}{% if s.lock_target %} on {{ s.lock_target }}{% endif %}{% endif %}{% if not s.transactional %} · outside a transaction{% endif %}{% if s.rewrites_table %} · rewrites the table{% endif %}{% if s.scans_table %} · scans the table{% endif %}
{% if s.one_way -%}
-- rollback: none — ONE-WAY DOOR
{%- else -%}
-- rollback:
{%- for line in s.rollback_lines %}
--   {{ line }}
{%- endfor %}
{%- endif %}
{% if s.open_tx %}BEGIN;
{% endif %}{{ s.sql }}
{% if s.record %}{{ s.record }}
{% endif %}{% if s.close_tx %}COMMIT;
{% endif %}{% endfor -%}
{% if runner %}{{ runner.epilogue }}{% endif %}
