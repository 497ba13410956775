//! The book stays navigable: every relative link in `book/src` resolves to a file, and every
//! page is reachable from SUMMARY.md.

use std::path::{Path, PathBuf};

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            pages(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// Targets of inline Markdown links `[text](target)`, outside code spans and blocks.
fn links(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_block = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        // Drop code spans so `a[i](x)` in code is not taken for a link.
        let text: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn every_book_link_resolves_and_every_page_is_in_the_summary() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let mut all = Vec::new();
    pages(&src, &mut all);
    let mut broken = Vec::new();
    for page in &all {
        let text = std::fs::read_to_string(page).unwrap();
        for target in links(&text) {
            if target.is_empty()
                || target.contains("://")
                || target.starts_with('#')
                || target.starts_with("mailto:")
            {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            if !page.parent().unwrap().join(file).exists() {
                broken.push(format!("{}: {target}", page.strip_prefix(&src).unwrap().display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links in the book:\n{}", broken.join("\n"));

    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: Vec<String> = links(&summary);
    let orphans: Vec<String> = all
        .iter()
        .map(|p| p.strip_prefix(&src).unwrap().to_string_lossy().into_owned())
        .filter(|p| p != "SUMMARY.md" && !listed.iter().any(|l| l == p))
        .collect();
    assert!(orphans.is_empty(), "pages not listed in book/src/SUMMARY.md:\n{}", orphans.join("\n"));
}

#[test]
fn link_extraction_skips_code() {
    let md = "see [a](a.md) and `x[i](j)`\n```\n[b](b.md)\n```\n[c](c.md#part)";
    assert_eq!(links(md), vec!["a.md".to_string(), "c.md#part".to_string()]);
}

// ---------------------------------------------------------------------------------------------
// The CLI reference, completions, man pages and every example, checked against clap.

use clap::CommandFactory;
use seqmig::cli::{Cli, reference};

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src")
}

/// `book/src/cli/*.md` are generated from the clap definitions; `SEQMIG_BLESS=1` rewrites them
/// (keeping the hand-written notes below the marker), otherwise they must match.
#[test]
fn cli_reference_pages_match_clap() {
    let dir = book_src().join("cli");
    let bless = std::env::var_os("SEQMIG_BLESS").is_some();
    let summary = std::fs::read_to_string(book_src().join("SUMMARY.md")).unwrap();
    let (mut stale, mut unlisted) = (Vec::new(), Vec::new());
    for (name, generated) in reference::pages() {
        let path = dir.join(&name);
        let existing = std::fs::read_to_string(&path).ok();
        let merged = reference::merge(&generated, existing.as_deref());
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &merged).unwrap();
        } else if existing.as_deref() != Some(merged.as_str()) {
            stale.push(name.clone());
        }
        if !summary.contains(&format!("(cli/{name})")) {
            unlisted.push(name);
        }
    }
    assert!(unlisted.is_empty(), "SUMMARY.md does not list these cli/ pages: {unlisted:?}");
    assert!(
        stale.is_empty(),
        "the CLI reference is stale (run SEQMIG_BLESS=1 cargo test --test tests book): {stale:?}"
    );
    // No page for a command that no longer exists.
    let expected: Vec<String> = reference::pages().into_iter().map(|(n, _)| n).collect();
    let extra: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && !expected.contains(n))
        .collect();
    assert!(extra.is_empty(), "pages in book/src/cli for no command: {extra:?}");
}

/// Every command's `--help` ends with examples, and each example parses and runs the very
/// command it illustrates.
#[test]
fn every_command_help_has_an_example_that_parses() {
    let root = reference::command();
    let mut problems = Vec::new();
    for (path, cmd) in reference::walk(&root) {
        let name = std::iter::once("seqmig".to_string()).chain(path.clone()).collect::<Vec<_>>().join(" ");
        let help = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        if !help.starts_with("Examples:") {
            problems.push(format!("{name}: --help has no 'Examples:' section"));
            continue;
        }
        let examples = reference::examples(cmd);
        if examples.is_empty() {
            problems.push(format!("{name}: no example"));
        }
        for line in examples {
            for words in invocations(&line, &Default::default()) {
                match Cli::command().try_get_matches_from(&words) {
                    Err(e) => problems.push(format!("{name}: `{line}` does not parse: {e}")),
                    Ok(m) => {
                        let mut used = Vec::new();
                        let mut m = &m;
                        while let Some((sub, inner)) = m.subcommand() {
                            used.push(sub.to_string());
                            m = inner;
                        }
                        if !used.starts_with(&path) {
                            problems.push(format!("{name}: `{line}` runs `{}` instead", used.join(" ")));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    use clap_complete::Shell;
    let root = reference::command();
    let names: Vec<String> = reference::subcommands(&root).map(|c| c.get_name().to_string()).collect();
    assert!(names.len() >= 14, "{names:?}");
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
        let script = seqmig::cli::completions::script(shell);
        for n in &names {
            assert!(script.contains(n.as_str()), "{shell} completions do not mention '{n}'");
        }
        assert!(script.contains("set-rate"), "{shell} completions miss backfill set-rate");
    }
    let top = seqmig::cli::man::page(&root).unwrap();
    for n in &names {
        assert!(top.contains(&format!("seqmig\\-{}", n.replace('-', "\\-"))), "seqmig.1 does not list '{n}'");
    }
    let dir = std::env::temp_dir().join(format!("seqmig-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let written = seqmig::cli::man::write_all(&dir).unwrap();
    for (path, _) in reference::walk(&root) {
        let file = dir.join(format!(
            "{}.1",
            std::iter::once("seqmig".to_string()).chain(path).collect::<Vec<_>>().join("-")
        ));
        assert!(written.contains(&file), "no man page {}", file.display());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with(".ie") && text.contains(".SH NAME"), "{} is not a man page", file.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Words of one shell line, split at quotes and whitespace; `$NAME` / `${NAME}` are replaced
/// from `vars` when known. Returns one word list per `seqmig` invocation in the line (a line
/// may pipe into seqmig or chain commands), without redirections.
fn invocations(line: &str, vars: &std::collections::HashMap<String, String>) -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<String>> = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    let mut redirect = false;
    let push = |commands: &mut Vec<Vec<String>>, word: &mut Option<String>, redirect: &mut bool| {
        if let Some(w) = word.take() {
            if *redirect {
                *redirect = false;
            } else {
                commands.last_mut().unwrap().push(w);
            }
        }
    };
    let expand = |chars: &mut std::iter::Peekable<std::str::Chars>| -> String {
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.peek() == Some(&'}') {
            chars.next();
        }
        vars.get(&name).cloned().unwrap_or_else(|| format!("${name}"))
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.as_mut().unwrap().push(n);
                            }
                        }
                        '$' => {
                            let v = expand(&mut chars);
                            word.as_mut().unwrap().push_str(&v);
                        }
                        c => word.as_mut().unwrap().push(c),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    word.get_or_insert_with(String::new).push(n);
                }
            }
            '$' => {
                let v = expand(&mut chars);
                word.get_or_insert_with(String::new).push_str(&v);
            }
            '#' if word.is_none() => break,
            c if c.is_whitespace() => push(&mut commands, &mut word, &mut redirect),
            '|' | ';' | '&' => {
                push(&mut commands, &mut word, &mut redirect);
                while chars.peek().is_some_and(|n| matches!(n, '|' | '&')) {
                    chars.next();
                }
                commands.push(Vec::new());
            }
            '>' | '<' => {
                // `2>` / `>` / `>>` / `2>&1`: drop the operator and its target.
                if word.as_deref().is_some_and(|w| w.chars().all(|c| c.is_ascii_digit())) {
                    word = None;
                } else {
                    push(&mut commands, &mut word, &mut redirect);
                }
                while chars.peek().is_some_and(|n| matches!(n, '>' | '&')) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| n.is_ascii_digit()) {
                    chars.next();
                } else {
                    redirect = true;
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    push(&mut commands, &mut word, &mut redirect);
    commands
        .into_iter()
        .filter_map(|c| {
            // `cargo run [--release] -- ARGS` runs seqmig from a checkout (the README's way).
            if c.first().is_some_and(|w| w == "cargo") && c.get(1).is_some_and(|w| w == "run") {
                let dashes = c.iter().position(|w| w == "--")?;
                return Some(
                    std::iter::once("seqmig".to_string()).chain(c[dashes + 1..].iter().cloned()).collect(),
                );
            }
            c.first().is_some_and(|w| w == "seqmig").then_some(c)
        })
        .collect()
}

#[test]
fn shell_lines_split_like_a_shell() {
    let vars = [("E".to_string(), "ex/07".to_string())].into_iter().collect();
    assert_eq!(
        invocations(
            r#"seqmig plan --from $E/a.sql --to "${E}/b c.sql" > /tmp/x.json 2>&1  # exits 1"#,
            &vars
        ),
        vec![vec!["seqmig", "plan", "--from", "ex/07/a.sql", "--to", "ex/07/b c.sql"]]
    );
    assert_eq!(
        invocations("pg_dump -s shop | seqmig inspect - --format sql && seqmig status", &vars),
        vec![vec!["seqmig", "inspect", "-", "--format", "sql"], vec!["seqmig", "status"]]
    );
    assert_eq!(invocations("seqmig apply --reason 'a $E b' --phase x", &vars)[0][3], "a $E b");
    assert_eq!(
        invocations("cargo run --release -- plan --from a", &vars),
        vec![vec!["seqmig", "plan", "--from", "a"]]
    );
    assert!(invocations("cargo test", &vars).is_empty());
}

/// A `seqmig` command found in a shell code block of the book.
struct BookCommand {
    page: String,
    line: usize,
    text: String,
    words: Vec<String>,
    expected_exit: i32,
    /// In a ```sh,no_run block: placeholder paths, parsed but not run.
    no_run: bool,
}

/// Every `seqmig …` invocation in the ```sh / ```bash / ```console / ``` blocks of the book
/// (and the `run:` lines of ```yaml workflows), with shell variables assigned earlier on the
/// same page (`E=…`, `export X=…`) expanded and `\` continuations joined. A line ending in
/// `# exits N` documents its exit code.
fn book_commands() -> Vec<BookCommand> {
    let mut all = Vec::new();
    pages(&book_src(), &mut all);
    all.sort();
    let mut found = Vec::new();
    for page in all {
        let rel = page.strip_prefix(book_src()).unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&page).unwrap();
        let mut vars = std::collections::HashMap::new();
        let mut shell = false;
        let mut no_run = false;
        let mut in_block = false;
        let mut pending = String::new();
        let mut start = 0;
        for (i, raw) in text.lines().enumerate() {
            let trimmed = raw.trim_start();
            if let Some(lang) = trimmed.strip_prefix("```") {
                in_block = !in_block;
                let mut tags = lang.trim().split(',').map(str::trim);
                let first = tags.next().unwrap_or_default();
                shell =
                    in_block && matches!(first, "" | "sh" | "bash" | "shell" | "console" | "yaml" | "yml");
                no_run = first.starts_with("y") || tags.any(|t| t == "no_run");
                continue;
            }
            if !shell {
                continue;
            }
            if pending.is_empty() {
                start = i + 1;
            }
            let line = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
            // In a workflow file, the command follows `run:` (or is a line of a `run: |` block).
            let line = line.strip_prefix("- ").unwrap_or(line);
            let line = line.strip_prefix("run: ").unwrap_or(line);
            if let Some(cont) = line.strip_suffix('\\') {
                pending.push_str(cont);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let full = std::mem::take(&mut pending);
            let assignment = full.strip_prefix("export ").unwrap_or(&full);
            if let Some((name, value)) = assignment.split_once('=')
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && !value.contains(' ')
            {
                vars.insert(name.to_string(), value.trim_matches('"').to_string());
                continue;
            }
            let expected_exit =
                full.rsplit_once("# exits ").and_then(|(_, n)| n.trim().parse().ok()).unwrap_or(0);
            for words in invocations(&full, &vars) {
                found.push(BookCommand {
                    page: rel.clone(),
                    line: start,
                    text: full.trim().to_string(),
                    words,
                    expected_exit,
                    no_run,
                });
            }
        }
    }
    found
}

/// Every `seqmig` command line in the book parses; those that need no database (`plan`, `lint`,
/// `inspect` on files of this repository, `completions`, `man`) are run from the repository
/// root and must exit as documented (0, or the `# exits N` on the line). Blocks marked
/// ```sh,no_run hold placeholder paths and are only parsed, as are the generated `cli/` pages.
#[test]
fn every_cli_example_in_the_book_parses_and_the_offline_ones_run() {
    let commands = book_commands();
    assert!(commands.len() > 40, "only {} seqmig commands found in the book", commands.len());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = std::env::temp_dir().join(format!("seqmig-book-{}", std::process::id()));
    let mut problems = Vec::new();
    let mut ran = 0;
    for c in &commands {
        let at = format!("book/src/{}:{}: `{}`", c.page, c.line, c.text);
        if let Err(e) = Cli::command().try_get_matches_from(&c.words) {
            use clap::error::ErrorKind;
            if !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                problems.push(format!("{at} does not parse:\n{e}"));
            }
            continue;
        }
        let offline = matches!(c.words[1].as_str(), "plan" | "lint" | "inspect" | "completions" | "man");
        let local = c
            .words
            .iter()
            .all(|w| !w.contains('$') && !w.starts_with("/tmp/") && !w.contains("://") && w != "-");
        // Reference pages illustrate flags with placeholder paths; they are only parsed.
        if !offline || !local || c.no_run || c.page.starts_with("cli/") {
            continue;
        }
        let mut args: Vec<String> = c.words[1..].to_vec();
        // Output directories go to a scratch directory, not into the repository.
        for flag in ["--out", "--out-dir"] {
            if let Some(i) = args.iter().position(|a| a == flag) {
                args[i + 1] = scratch.join(format!("{}-{}", c.line, ran)).to_string_lossy().into_owned();
            }
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(&args)
            .current_dir(root)
            .output()
            .unwrap();
        ran += 1;
        let code = out.status.code().unwrap_or(-1);
        if code != c.expected_exit {
            problems.push(format!(
                "{at} exited {code}, the book says {}:\n{}",
                c.expected_exit,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(ran >= 10, "only {ran} book commands were run");
}

/// The tutorial, run as a new user would run it: every ```sh block of `tutorial.md` in order,
/// in one bash session from the repository root, with `set -e` (a line marked `# exits N`
/// must exit N). Only three things differ from the page: the freshly built binary stands in
/// for `cargo build --release`, and the port and the directory are free ones instead of
/// 54329 and /tmp/tut. As root, `initdb` and `pg_ctl` run as `postgres`, as the page says.
#[test]
fn the_tutorial_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(book_src().join("tutorial.md")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let dir = std::env::temp_dir().join(format!("seqmig-tut-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.to_string_lossy().into_owned();
    let bin = Path::new(env!("CARGO_BIN_EXE_seqmig")).parent().unwrap().to_string_lossy().into_owned();
    let as_root =
        std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));

    let mut script = String::from("set -e\ntrap 'echo \"tutorial failed at: $BASH_COMMAND\" >&2' ERR\n");
    if as_root {
        std::process::Command::new("chown").args(["postgres:", &dir_s]).status().unwrap();
        script.push_str(
            "initdb() { runuser -u postgres -- \"$(command -v initdb)\" \"$@\"; }\n\
             pg_ctl() { runuser -u postgres -- \"$(command -v pg_ctl)\" \"$@\"; }\n",
        );
    }
    let mut in_sh = false;
    for line in text.lines() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            in_sh = !in_sh && lang.trim() == "sh";
            continue;
        }
        if !in_sh || line.starts_with("cargo build") {
            continue;
        }
        let line =
            line.replace("$PWD/target/release", &bin).replace("/tmp/tut", &dir_s).replace("54329", &port);
        match line.rsplit_once("# exits ") {
            Some((cmd, code)) => {
                let code: i32 = code.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
                script.push_str(&format!(
                    "set +e; {cmd}\nrc=$?; set -e\n[ $rc -eq {code} ] || {{ echo '`{}` exited '$rc', the page says {code}' >&2; exit 97; }}\n",
                    cmd.trim().replace('\'', "")
                ));
            }
            None => {
                script.push_str(&line);
                script.push('\n');
            }
        }
    }
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c").arg(&script).current_dir(root);
    for var in ["DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "SEQMIG_ACTOR"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    // Whatever happened, leave no server behind.
    let data = dir.join("data");
    if data.join("postmaster.pid").exists() {
        let mut stop = std::process::Command::new(if as_root { "runuser" } else { "pg_ctl" });
        if as_root {
            stop.args(["-u", "postgres", "--", "pg_ctl"]);
        }
        let _ = stop.args(["-D", &data.to_string_lossy(), "stop", "-m", "immediate"]).output();
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "the tutorial failed (exit {:?}):\n--- stderr\n{}\n--- stdout (end)\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in ["full_name  | text", "break_glass  plan", " 10000\n", "id     | bigint"] {
        assert!(stdout.contains(expected), "the tutorial's output lacks '{expected}':\n{stdout}");
    }
}
