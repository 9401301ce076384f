//! Fuzz target: see `altinn_systemuser::fuzzing::authorization_header`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        // The key is generated once, before the first input.
        altinn_systemuser::fuzzing::init();
    },
    |data: &[u8]| {
        altinn_systemuser::fuzzing::authorization_header(data);
    }
);
