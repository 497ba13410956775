//! Where the shared real-world schema corpus is: one definition for the integration tests
//! and the benchmarks (both include this file). It is read in place, never copied into the
//! repository: `$SEQMIG_CORPUS_DIR`, else `shared/corpus` beside the checkout (CI clones the
//! repository with `shared/` beside it), else one level further up (a git worktree under a
//! folder beside `shared/`). A missing corpus panics with how to get it: never a silent skip.

use std::path::PathBuf;

pub fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEQMIG_CORPUS_DIR") {
        return PathBuf::from(dir);
    }
    let candidates = [
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus")),
    ];
    candidates.iter().find(|d| d.is_dir()).cloned().unwrap_or_else(|| {
        panic!(
            "the schema corpus is not at {}; put the shared/ directory beside the checkout \
             or set SEQMIG_CORPUS_DIR",
            candidates[0].display()
        )
    })
}
