//! `[backfill]` in `seqmig.toml`: the settings of the backfill that `seqmig apply --phase
//! backfill` runs. Read raw with serde and validated once (STYLE habit 2); other sections of
//! the file belong to other modules and are ignored here, unknown keys of `[backfill]` are
//! refused.
//!
//! ```toml
//! [backfill]
//! workload_latency = 1.5   # pace while the workload's transactions take > 1.5× their time alone
//! # workload_latency = "off"
//! jobs = 2                 # workers per backfill: partitions, or slices of a table's key
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The validated `[backfill]` section; `None`: not set (the built-in default applies).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillConfig {
    /// `Some(None)`: `"off"`; `Some(Some(f))`: the factor.
    pub workload_latency: Option<Option<f64>>,
    /// Workers per backfill (`--jobs`); `None`: 1.
    pub jobs: Option<u32>,
}

impl BackfillConfig {
    /// Applies the settings to `options`.
    pub fn apply(&self, options: &mut super::BackfillOptions) {
        if let Some(w) = self.workload_latency {
            options.throttle.workload_latency = w;
        }
    }

    pub fn from_toml(text: &str) -> Result<BackfillConfig, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let Some(b) = raw.backfill else { return Ok(BackfillConfig::default()) };
        let workload_latency = match b.workload_latency {
            None => None,
            Some(RawLatency::Factor(f)) => Some(check_factor(f, &f.to_string())?),
            Some(RawLatency::Text(t)) => Some(parse_workload_latency(&t)?),
        };
        let jobs = match b.jobs {
            Some(j) if !(1..=64).contains(&j) => return Err(format!("jobs = {j} must be between 1 and 64")),
            j => j,
        };
        Ok(BackfillConfig { workload_latency, jobs })
    }

    /// Reads `path`, or `./seqmig.toml` when it exists, else the defaults.
    pub fn discover(path: Option<&Path>) -> Result<BackfillConfig, String> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let default = PathBuf::from("seqmig.toml");
                if !default.exists() {
                    return Ok(BackfillConfig::default());
                }
                default
            }
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("failed to read '{}': {e}", path.display()))?;
        BackfillConfig::from_toml(&text).map_err(|e| format!("'{}': [backfill] {e}", path.display()))
    }
}

/// `off`, or a factor of at least 1 (`1.5`): the flag's and the file's grammar.
pub fn parse_workload_latency(text: &str) -> Result<Option<f64>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(f) => check_factor(f, text),
        Err(_) => Err(format!("workload_latency '{text}' is neither a factor such as 1.5 nor \"off\"")),
    }
}

fn check_factor(f: f64, text: &str) -> Result<Option<f64>, String> {
    if f.is_finite() && f > 1.0 {
        Ok(Some(f))
    } else {
        Err(format!(
            "workload_latency {text} must be a factor above 1 (the workload's transaction time \
             against its time while the backfill is idle, e.g. 1.5) or \"off\""
        ))
    }
}

#[derive(Debug, Deserialize)]
struct RawFile {
    #[serde(default)]
    backfill: Option<RawBackfill>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackfill {
    #[serde(default)]
    workload_latency: Option<RawLatency>,
    #[serde(default)]
    jobs: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawLatency {
    Factor(f64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_latency_reads_a_factor_or_off() {
        let c = |t: &str| BackfillConfig::from_toml(t);
        assert_eq!(c("[gate]\nmin_soak = \"1h\"\n").unwrap(), BackfillConfig::default());
        assert_eq!(c("[backfill]\nworkload_latency = 2\n").unwrap().workload_latency, Some(Some(2.0)));
        assert_eq!(c("[backfill]\nworkload_latency = 1.25\n").unwrap().workload_latency, Some(Some(1.25)));
        assert_eq!(c("[backfill]\nworkload_latency = \"off\"\n").unwrap().workload_latency, Some(None));
        assert_eq!(c("[backfill]\nworkload_latency = \"1.5\"\n").unwrap().workload_latency, Some(Some(1.5)));
        let e = c("[backfill]\nworkload_latency = 0.5\n").unwrap_err();
        assert!(e.contains("must be a factor above 1"), "{e}");
        let e = c("[backfill]\nworkload_latency = \"never\"\n").unwrap_err();
        assert!(e.contains("neither a factor"), "{e}");
        assert_eq!(c("[backfill]\njobs = 2\n").unwrap().jobs, Some(2));
        let e = c("[backfill]\njobs = 0\n").unwrap_err();
        assert!(e.contains("between 1 and 64"), "{e}");
        let e = c("[backfill]\nworkload_latncy = 2\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
