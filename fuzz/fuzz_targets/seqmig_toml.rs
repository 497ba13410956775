//! `seqmig.toml`: the hints, the `[lint]` table and the gate configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = seqmig::diff::Hints::from_toml(text, "fuzz.toml");
    let _ = seqmig::lint::LintConfig::from_toml(text);
    let _ = seqmig::soak::GateConfig::from_toml(text);
});
