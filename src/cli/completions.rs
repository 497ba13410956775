//! `seqmig completions SHELL`: the shell completion script, generated from the same clap
//! definitions as `--help`, the man pages and the book's CLI reference.

use clap_complete::Shell;

use super::{Outcome, output};

pub(crate) const EXAMPLES: &str = "Examples:
  seqmig completions bash > ~/.local/share/bash-completion/completions/seqmig
  seqmig completions zsh > ~/.zfunc/_seqmig
  seqmig completions fish > ~/.config/fish/completions/seqmig.fish";

/// Print a shell completion script for seqmig.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    output::stdout(&script(args.shell))?;
    Ok(Outcome::Yes)
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut cmd = super::reference::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "seqmig", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
