//! Renders lint results for humans and machines: text with source excerpts, JSON, GitHub
//! workflow annotations and SARIF 2.1.0. Pure functions returning strings; `cli::lint`
//! writes them.

use serde_json::{Value, json};

use super::FileReport;
use super::rules::RULES;
use crate::finding::{Finding, Severity};

/// `file:line:col: severity[code]: message`, the statement's first line, and the help.
pub fn text(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let lines: Vec<&str> = r.source.lines().collect();
        for f in &r.findings {
            let (line, col) = f.span.as_ref().map(|s| (s.line, s.column)).unwrap_or((1, 1));
            out.push_str(&format!("{}:{line}:{col}: {}[{}]: {}\n", r.path, severity(f), f.code, f.message));
            if let Some(src) = lines.get(line.saturating_sub(1)) {
                let gutter = " ".repeat(line.to_string().len());
                out.push_str(&format!("{gutter} |\n{line} | {src}\n{gutter} |\n"));
                out.push_str(&format!("{gutter} = help: {}\n\n", f.help));
            } else {
                out.push_str(&format!("  = help: {}\n\n", f.help));
            }
        }
    }
    let (errors, warnings) = counts(reports);
    out.push_str(&format!(
        "{} file{} linted: {errors} error{}, {warnings} warning{}\n",
        reports.len(),
        plural(reports.len()),
        plural(errors),
        plural(warnings)
    ));
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn severity(f: &Finding) -> &'static str {
    match f.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

pub fn counts(reports: &[FileReport]) -> (usize, usize) {
    let all = reports.iter().flat_map(|r| &r.findings);
    let errors = all.clone().filter(|f| f.is_error()).count();
    (errors, all.count() - errors)
}

/// `{"files": [...], "findings": [Finding…], "errors": n, "warnings": n}`.
pub fn json(reports: &[FileReport]) -> String {
    let (errors, warnings) = counts(reports);
    let findings: Vec<&Finding> = reports.iter().flat_map(|r| &r.findings).collect();
    let doc = json!({
        "files": reports.iter().map(|r| &r.path).collect::<Vec<_>>(),
        "findings": findings,
        "errors": errors,
        "warnings": warnings,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// GitHub Actions workflow commands: one `::error …::…` / `::warning …::…` line per finding.
pub fn github(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        for f in &r.findings {
            let (line, col) = f.span.as_ref().map(|s| (s.line, s.column)).unwrap_or((1, 1));
            out.push_str(&format!(
                "::{} file={},line={line},col={col},title={}::{}\n",
                severity(f),
                gh_property(&r.path),
                gh_property(&format!("seqmig {}", f.code)),
                gh_data(&format!("{} (help: {})", f.message, f.help)),
            ));
        }
    }
    out
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// SARIF 2.1.0, one run, every rule described, for code-scanning upload.
pub fn sarif(reports: &[FileReport]) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.code,
                "shortDescription": { "text": r.what.replace('`', "") },
                "fullDescription": { "text": r.why.replace('`', "") },
                "help": { "text": r.help },
                "helpUri": format!("https://seqmig.dev/book/lints/{}.html", r.code),
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": { "tags": [r.family] },
            })
        })
        .collect();
    let results: Vec<Value> = reports
        .iter()
        .flat_map(|r| r.findings.iter().map(move |f| (r, f)))
        .map(|(r, f)| {
            let (line, col) = f.span.as_ref().map(|s| (s.line, s.column)).unwrap_or((1, 1));
            json!({
                "ruleId": f.code,
                "ruleIndex": RULES.iter().position(|x| x.code == f.code).unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": format!("{} Help: {}", capitalise_sentence(&f.message), f.help) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&r.path) },
                        "region": { "startLine": line, "startColumn": col },
                    },
                    "logicalLocations": [{ "name": f.object }],
                }],
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "seqmig",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://seqmig.dev/book/lint.html",
                "rules": rules,
            }},
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// SARIF messages are sentences; seqmig's are lowercase phrases.
fn capitalise_sentence(s: &str) -> String {
    let mut c = s.chars();
    let head: String = c.next().map(|h| h.to_uppercase().collect()).unwrap_or_default();
    format!("{head}{}.", c.as_str())
}

/// A relative URI reference for a path: forward slashes, reserved bytes percent-encoded.
fn uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.strip_prefix("./").unwrap_or(&p);
    let mut out = String::new();
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escapes_properties_and_data() {
        assert_eq!(gh_property("a,b:c%"), "a%2Cb%3Ac%25");
        assert_eq!(gh_data("x\ny"), "x%0Ay");
        assert_eq!(uri("./dir/my file.sql"), "dir/my%20file.sql");
    }
}
