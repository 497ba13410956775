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
