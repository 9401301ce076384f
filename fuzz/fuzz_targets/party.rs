//! Fuzz target: see `altinn_systemuser::fuzzing::party`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    altinn_systemuser::fuzzing::party(data);
});
