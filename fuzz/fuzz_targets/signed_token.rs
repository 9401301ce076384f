//! Fuzz target: see `altinn_systemuser::fuzzing::signed_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        // The key is generated once, before the first input.
        altinn_systemuser::fuzzing::init();
    },
    |data: &[u8]| {
        let _ = altinn_systemuser::fuzzing::signed_token(data);
    }
);
