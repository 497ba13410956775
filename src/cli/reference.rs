//! The CLI reference in the book, generated from the clap definitions so it cannot drift:
//! one Markdown page per top-level command (its subcommands as sections), with usage,
//! arguments, defaults, environment variables, accepted values and the `--help` examples.
//! `tests/book_tests.rs` compares the pages with `book/src/cli/`; the shell completions and
//! the man pages (`seqmig completions`, `seqmig man`) come from the same [`command`].

use std::fmt::Write as _;

use clap::{Arg, Command, CommandFactory};

use super::Cli;

/// The line that separates a page's generated part from hand-written notes below it; the
/// generator owns everything above it and keeps everything below it.
pub const HAND_WRITTEN_MARKER: &str =
    "<!-- hand-written notes below this line are kept when the page is regenerated -->";

/// The whole command tree, built (bin names propagated, `help` subcommand added).
pub fn command() -> Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// The visible subcommands of `cmd`, without clap's generated `help`.
pub fn subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

/// Every visible command, depth first, each with its full path (`["backfill", "pause"]`);
/// the root is the empty path.
pub fn walk(cmd: &Command) -> Vec<(Vec<String>, &Command)> {
    fn go<'a>(path: Vec<String>, cmd: &'a Command, out: &mut Vec<(Vec<String>, &'a Command)>) {
        out.push((path.clone(), cmd));
        for sub in subcommands(cmd) {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            go(p, sub, out);
        }
    }
    let mut out = Vec::new();
    go(Vec::new(), cmd, &mut out);
    out
}

/// The `seqmig …` lines of a command's `Examples:` section (comments and blank lines skipped).
pub fn examples(cmd: &Command) -> Vec<String> {
    cmd.get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("seqmig ") || *l == "seqmig")
        .map(str::to_string)
        .collect()
}

/// One generated page per top-level command: `(file name, generated text)`, plus the index
/// `README.md`. The text ends with [`HAND_WRITTEN_MARKER`]; see [`merge`].
pub fn pages() -> Vec<(String, String)> {
    let root = command();
    let mut pages = vec![("README.md".to_string(), index(&root))];
    for sub in subcommands(&root) {
        let mut page = String::new();
        let name = sub.get_name();
        let _ = writeln!(page, "# seqmig {name}\n");
        let _ = writeln!(
            page,
            "<!-- generated from the clap definitions in src/cli/ by src/cli/reference.rs; \
             regenerate with: SEQMIG_BLESS=1 cargo test --test tests book -->\n"
        );
        section(&mut page, sub, &format!("seqmig {name}"), 2);
        for leaf in subcommands(sub) {
            let _ = writeln!(page, "## seqmig {name} {}\n", leaf.get_name());
            section(&mut page, leaf, &format!("seqmig {name} {}", leaf.get_name()), 3);
        }
        page.push_str(HAND_WRITTEN_MARKER);
        page.push('\n');
        pages.push((format!("{name}.md"), page));
    }
    pages
}

/// The generated part followed by whatever was below the marker in the existing page.
pub fn merge(generated: &str, existing: Option<&str>) -> String {
    let tail = existing.and_then(|e| e.split_once(HAND_WRITTEN_MARKER)).map(|(_, t)| t).unwrap_or("");
    format!("{}{}", generated.trim_end_matches('\n'), if tail.is_empty() { "\n" } else { tail })
}

/// `book/src/cli/README.md`: the commands, one line each, and the exit codes.
fn index(root: &Command) -> String {
    let mut page = String::from("# Command-line reference\n\n");
    page.push_str(
        "<!-- generated from the clap definitions in src/cli/ by src/cli/reference.rs; \
         regenerate with: SEQMIG_BLESS=1 cargo test --test tests book -->\n\n",
    );
    let _ = writeln!(page, "{}\n", text(root.get_about()));
    page.push_str(
        "Every command exits 0 when it is done or the answer is yes, 1 when the answer is no \
         (blocking findings, a closed gate, rows still differing) and 2 on an error. \
         `seqmig COMMAND --help` prints the same text as these pages, with examples.\n\n",
    );
    page.push_str("| command | what it does |\n|---|---|\n");
    for sub in subcommands(root) {
        let _ = writeln!(
            page,
            "| [`seqmig {0}`]({0}.md) | {1} |",
            sub.get_name(),
            text(sub.get_about()).replace('|', "\\|")
        );
    }
    page.push('\n');
    page.push_str(HAND_WRITTEN_MARKER);
    page.push('\n');
    page
}

fn section(page: &mut String, cmd: &Command, path: &str, level: usize) {
    let hashes = "#".repeat(level);
    let about = text(cmd.get_long_about().or(cmd.get_about()));
    if !about.is_empty() {
        let _ = writeln!(page, "{about}\n");
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
    let _ = writeln!(page, "```text\n{usage}\n```\n");

    let subs: Vec<&Command> = subcommands(cmd).collect();
    if !subs.is_empty() {
        let _ = writeln!(page, "{hashes} Subcommands\n");
        for s in subs {
            let _ = writeln!(page, "- `{path} {}`: {}", s.get_name(), text(s.get_about()));
        }
        page.push('\n');
    }

    let args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    let (positional, options): (Vec<&Arg>, Vec<&Arg>) = args.into_iter().partition(|a| a.is_positional());
    if !positional.is_empty() {
        let _ = writeln!(page, "{hashes} Arguments\n");
        for a in positional {
            argument(page, a);
        }
        page.push('\n');
    }
    if !options.is_empty() {
        let _ = writeln!(page, "{hashes} Options\n");
        for a in options {
            argument(page, a);
        }
        page.push('\n');
    }
    let examples = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
    if let Some(body) = examples.trim().strip_prefix("Examples:") {
        let _ = writeln!(page, "{hashes} Examples\n");
        let lines: Vec<&str> = body.lines().map(str::trim).collect();
        let _ = writeln!(page, "```sh\n{}\n```\n", lines.join("\n").trim());
    }
}

/// One list item: the flag and its value, then help, default, environment and values.
fn argument(page: &mut String, a: &Arg) {
    let values =
        a.get_value_names().map(|v| v.iter().map(|n| format!("<{n}>")).collect::<Vec<_>>().join(" "));
    let takes_value = a.get_num_args().is_some_and(|n| n.takes_values());
    let mut head = match (a.get_long(), a.get_short()) {
        (Some(l), Some(s)) => format!("-{s}, --{l}"),
        (Some(l), None) => format!("--{l}"),
        (None, Some(s)) => format!("-{s}"),
        (None, None) => String::new(),
    };
    if takes_value || a.is_positional() {
        let v = values.unwrap_or_else(|| format!("<{}>", a.get_id().as_str().to_uppercase()));
        head = if head.is_empty() { v } else { format!("{head} {v}") };
        if a.get_num_args().is_some_and(|n| n.max_values() > 1) {
            head.push('…');
        }
    }
    let mut line = format!("- `{head}`");
    if a.is_required_set() {
        line.push_str(" (required)");
    }
    let help = text(a.get_long_help().or(a.get_help()));
    if !help.is_empty() {
        let _ = write!(line, ": {}", help.replace('\n', " "));
    }
    let mut notes = Vec::new();
    let defaults: Vec<String> =
        a.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
    if !defaults.is_empty() && takes_value {
        notes.push(format!("default `{}`", defaults.join(",")));
    }
    if let Some(env) = a.get_env() {
        notes.push(format!("environment `{}`", env.to_string_lossy()));
    }
    let possible: Vec<_> = a.get_possible_values().into_iter().filter(|p| !p.is_hide_set()).collect();
    let described = possible.iter().any(|p| p.get_help().is_some());
    if !possible.is_empty() && takes_value && !described {
        let names: Vec<String> = possible.iter().map(|p| format!("`{}`", p.get_name())).collect();
        notes.push(format!("one of {}", names.join(", ")));
    }
    if !notes.is_empty() {
        let _ = write!(line, " ({})", notes.join("; "));
    }
    if takes_value && described {
        for p in &possible {
            let help = p.get_help().map(|h| h.to_string().trim().trim_end_matches('.').to_string());
            let _ = write!(
                line,
                "\n  - `{}`{}",
                p.get_name(),
                help.map(|h| format!(": {h}")).unwrap_or_default()
            );
        }
    }
    let _ = writeln!(page, "{line}");
}

fn text(s: Option<&clap::builder::StyledStr>) -> String {
    s.map(|s| s.to_string().trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_hand_written_tail() {
        let generated = format!("# x\n\ngenerated\n{HAND_WRITTEN_MARKER}\n");
        let old = format!("# x\n\nold\n{HAND_WRITTEN_MARKER}\n\nmy notes\n");
        assert_eq!(
            merge(&generated, Some(&old)),
            format!("# x\n\ngenerated\n{HAND_WRITTEN_MARKER}\n\nmy notes\n")
        );
        assert_eq!(merge(&generated, None), generated);
    }

    #[test]
    fn every_visible_command_gets_a_page() {
        let names: Vec<String> = pages().into_iter().map(|(n, _)| n).collect();
        for sub in subcommands(&command()) {
            assert!(names.contains(&format!("{}.md", sub.get_name())), "no page for {}", sub.get_name());
        }
    }
}
