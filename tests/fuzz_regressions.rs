//! Every input in `fuzz/regressions/<target>/` (a finding of a fuzz run, kept after its fix)
//! replayed through the fuzz target's entry point in `altinn_systemuser::fuzzing` (feature
//! `fuzzing`), whose invariants panic if the finding comes back. The fuzz targets themselves
//! need nightly and cargo-fuzz (`fuzz/run.sh`); this runs on stable, in the normal suite.

use altinn_systemuser::fuzzing;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{} fails again", path.display());
        }
        n += 1;
    }
    n
}

#[test]
fn fuzz_findings_stay_fixed() {
    fuzzing::init();
    let n = replay("authorization_header", fuzzing::authorization_header)
        + replay("signed_token", |d| {
            fuzzing::signed_token(d);
        })
        + replay("key_documents", fuzzing::key_documents)
        + replay("pdp_answer", |d| {
            fuzzing::pdp_answer(d);
        })
        + replay("party", fuzzing::party);
    assert!(n >= 1, "no regression inputs found under fuzz/regressions");
}

/// The entry points reach what they are meant to reach (so that a fuzz run is not spent on
/// inputs refused at the door): a valid signed token passes every claim rule, an expired one does
/// not, and a PDP answer is read.
#[test]
fn the_entry_points_reach_the_claims_and_the_decision() {
    fuzzing::init();
    let now = fuzzing::NOW;
    let header = br#"{"alg":"RS256","kid":"fuzz","typ":"JWT"}"#;
    let signed = |iat: i64, exp: i64| {
        let payload = format!(r#"{{"iss":"{}","iat":{iat},"exp":{exp},"scope":"a"}}"#, fuzzing::ISSUER);
        fuzzing::signed_token(&[&[0u8][..], header, &[0xFF], payload.as_bytes()].concat())
    };
    assert!(signed(now - 10, now + 100), "a valid token did not pass");
    assert!(!signed(now - 200, now - 100), "an expired token passed");
    assert_eq!(
        fuzzing::pdp_answer(b"\0{\"response\":[{\"decision\":\"Permit\"}]}"),
        Some(altinn_systemuser::pdp::Decision::Permit)
    );
    assert_eq!(
        fuzzing::pdp_answer(b"\0{\"response\":[{\"decision\":\"permit\"}]}"),
        Some(altinn_systemuser::pdp::Decision::Indeterminate)
    );
}
