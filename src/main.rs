//! The `seqmig` binary: parse arguments, run, map the outcome to an exit code
//! (0 yes/done, 1 the answer is no, 2 error) and print the error chain.

use std::process::ExitCode;

fn main() -> ExitCode {
    match seqmig::cli::run() {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) => {
            if seqmig::cli::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            #[allow(clippy::print_stderr)] // main prints the final error chain, nothing else does
            {
                eprintln!("error: {err}");
                for cause in err.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::from(2)
        }
    }
}
