//! `seqmig man`: roff man pages generated from the same clap definitions as `--help`, the
//! completions and the book's CLI reference.

use std::path::PathBuf;

use anyhow::Context as _;

use super::{Outcome, output};

pub(crate) const EXAMPLES: &str = "Examples:
  seqmig man > seqmig.1
  seqmig man --out-dir /usr/local/share/man/man1";

/// Print the seqmig(1) man page, or write one page per command into a directory.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write seqmig.1 and seqmig-COMMAND.1 for every command (and subcommand) into this directory.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("failed to create '{}'", dir.display()))?;
            let written = write_all(&dir)?;
            output::stdout(&format!("wrote {} man pages to '{}'\n", written.len(), dir.display()))?;
        }
        None => output::stdout(&page(&super::reference::command())?)?,
    }
    Ok(Outcome::Yes)
}

/// The roff text of one command's page.
pub fn page(cmd: &clap::Command) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf).context("failed to render the man page")?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Writes a page for every visible command; returns the files written.
pub fn write_all(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let root = super::reference::command();
    let mut written = Vec::new();
    for (path, cmd) in super::reference::walk(&root) {
        let name = std::iter::once("seqmig".to_string()).chain(path).collect::<Vec<_>>().join("-");
        let file = dir.join(format!("{name}.1"));
        std::fs::write(&file, page(cmd)?).with_context(|| format!("failed to write '{}'", file.display()))?;
        written.push(file);
    }
    Ok(written)
}
