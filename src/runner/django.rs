//! Django (<https://www.djangoproject.com>): an app `seqmig_<plan short id>` whose
//! `migrations/` hold one migration per [`Unit`] (`0001_expand.py`, …), each depending on the
//! one before, each one `RunSQL` with a list of statements (Django runs them one by one,
//! without parameter substitution). A unit that cannot run in a transaction is a migration
//! with `atomic = False`. A one-way unit has no `reverse_sql`, so Django refuses to unapply
//! it. `seqmig_settings.py` reads `DATABASE_URL` for running the app on its own; in a
//! project, add the app to `INSTALLED_APPS`. Migrate phase by phase with
//! `django-admin migrate <app> <migration>`.

use super::{Direction, Unit, unit_statements, units};
use crate::plan::{Phase, Planned};

/// The Django app label: `seqmig_<first 8 hex digits of the plan id>`.
pub fn app_label(planned: &Planned) -> String {
    format!("seqmig_{}", &planned.plan.short_id()[..8])
}

/// The migration name of a unit: `0001_expand`, `0002_dual_write`, …
pub fn migration_name(n: usize, unit: &Unit<'_>) -> String {
    format!("{:04}_{}", n, unit.name())
}

/// The last migration of each phase, in order: what `migrate <app>` names.
pub fn phase_targets(planned: &Planned) -> Vec<(Phase, String)> {
    units(planned)
        .iter()
        .enumerate()
        .filter(|(_, u)| u.last)
        .map(|(i, u)| (u.phase, migration_name(i + 1, u)))
        .collect()
}

const SETTINGS_PY: &str = r#"# Written by seqmig: enough Django to run the plan's migrations on their own
# (DJANGO_SETTINGS_MODULE=seqmig_settings, DATABASE_URL=postgres://user:pass@host:port/db).
import os
from urllib.parse import unquote, urlparse

_url = urlparse(os.environ["DATABASE_URL"])
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
        "OPTIONS": {"application_name": "django"},
    }
}
INSTALLED_APPS = ["{app}"]
USE_TZ = True
SECRET_KEY = "seqmig-migrations-only"
"#;

/// `seqmig_settings.py`, the app package and its migrations.
pub fn files(planned: &Planned) -> Vec<(String, String)> {
    let plan = &planned.plan;
    let app = app_label(planned);
    let mut out = vec![
        ("seqmig_settings.py".to_string(), SETTINGS_PY.replace("{app}", &app)),
        (format!("{app}/__init__.py"), String::new()),
        (format!("{app}/migrations/__init__.py"), String::new()),
    ];
    let mut prev: Option<String> = None;
    for (i, u) in units(planned).iter().enumerate() {
        let name = migration_name(i + 1, u);
        // A JSON array of strings is a valid Python list literal.
        let up = serde_json::to_string_pretty(&unit_statements(planned, u, Direction::Apply))
            .expect("strings serialise");
        let one_way: Vec<&str> = u.steps.iter().filter(|s| s.one_way).map(|s| s.id.as_str()).collect();
        let reverse = if one_way.is_empty() {
            serde_json::to_string_pretty(&unit_statements(planned, u, Direction::Rollback))
                .expect("strings serialise")
        } else {
            "None".to_string()
        };
        let steps: Vec<&str> = u.steps.iter().map(|s| s.id.as_str()).collect();
        let text = format!(
            r#""""seqmig plan {short}: phase {phase}, steps {steps}."""
from django.db import migrations

UPGRADE = {up}

# None: the migration holds one-way steps ({one_way}); contract cannot be unapplied.
DOWNGRADE = {reverse}


class Migration(migrations.Migration):
    # False for a step that cannot run in a transaction (CONCURRENTLY, ADD VALUE).
    atomic = {atomic}
    dependencies = [{deps}]
    operations = [migrations.RunSQL(sql=UPGRADE, reverse_sql=DOWNGRADE)]
"#,
            short = plan.short_id(),
            phase = u.phase,
            steps = steps.join(", "),
            one_way = one_way.join(", "),
            atomic = if u.transactional { "True" } else { "False" },
            deps = prev.as_ref().map(|p| format!("(\"{app}\", \"{p}\")")).unwrap_or_default(),
        );
        out.push((format!("{app}/migrations/{name}.py"), text));
        prev = Some(name);
    }
    out
}
