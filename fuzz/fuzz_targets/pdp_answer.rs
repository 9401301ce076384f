//! Fuzz target: see `altinn_systemuser::fuzzing::pdp_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = altinn_systemuser::fuzzing::pdp_answer(data);
});
