//! SQL loading: the splitter, the loader (statements into the model) and the linter on any
//! bytes. A panic or a hang is a bug; an error is an answer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    let _ = seqmig::parse::split_statements(sql);
    let _ = seqmig::parse::load_str("fuzz.sql", sql);
    let _ = seqmig::lint::lint_source("fuzz.sql", sql, &seqmig::lint::LintConfig::default());
});
