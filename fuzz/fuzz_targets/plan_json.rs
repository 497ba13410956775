//! Plan JSON: any accepted plan's id matches its content, so an edited plan is never
//! accepted under a new id.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(plan) = seqmig::plan::Plan::from_json(text) {
        assert_eq!(plan.id, plan.compute_id(), "an accepted plan's id matches its content");
    }
});
