//! The program's life: a configuration it cannot use, `check`, clean shutdown on signals.

use crate::harness::{Kind, Pep, Setup, ask, tmp_dir};
use crate::pep_fakes::PepFakes;

#[tokio::test]
async fn a_bad_configuration_exits_non_zero_naming_the_key() {
    let dir = tmp_dir("bad-config");
    let fakes = PepFakes::start(&dir).await.unwrap();
    let good = fakes.config().unwrap();
    let cases: Vec<(String, &str)> = vec![
        (good.replace("path = \"/whoami\"", "path = \"whoami\""), "routes[2].path"),
        (good.replace("methods = [\"POST\"]", "methods = [\"post\"]"), "routes[1].methods"),
        (
            good.replace("resource = \"kravogbetaling\"   #", "resource = \"Krav\"   #"),
            "routes[2].resource",
        ),
        (
            good.replace("party = { header = \"X-Party\" }", "party = { header = \"X-Altinn-Party\" }"),
            "routes[3].party",
        ),
        (good.replace("client_id = \"pep-fakes-provider\"", ""), "pdp.credentials.client_id"),
        (
            good.replace("require_scope = [\"skatteetaten:kravogbetalinger\"]", ""),
            "maskinporten.require_scope",
        ),
        (
            good.replace("[maskinporten]", "[maskinporten]\nrefusal_form = \"auto\""),
            "maskinporten.refusal_form",
        ),
        (
            good.replace("decision = \"127.0.0.1:0\"", "decision = \"localhost\""),
            "listen.decision",
        ),
        (
            good.replace(
                "subscription_key = { env = \"ALTINN_SUBSCRIPTION_KEY\" }",
                "subscription_key = { env = \"ALTINN_PEP_NOT_SET\" }",
            ),
            "pdp.subscription_key",
        ),
        (good.replace("[listen]", "[listen]\nport = 80"), "port"),
    ];
    for (i, (doc, key)) in cases.iter().enumerate() {
        assert_ne!(doc, &good, "case {i} changed nothing");
        let path = dir.join(format!("bad-{i}.toml"));
        std::fs::write(&path, doc).unwrap();
        let exited = match Pep::try_spawn(&path, &dir).await {
            Ok(_) => panic!("served with a bad configuration ({key})"),
            Err(e) => e,
        };
        assert_eq!(exited.status.code(), Some(2), "{key}: {}", exited.stderr);
        assert!(
            exited.stderr.contains(&format!("invalid configuration: {key}")),
            "{key} in {}",
            exited.stderr
        );
        let (status, stderr) = Pep::check(&path, &dir).await;
        assert_eq!(status.code(), Some(2), "check: {stderr}");
        assert!(stderr.contains(key), "{key} in {stderr}");
    }
    // A file that is not there.
    let missing = dir.join("missing.toml");
    let exited = Pep::try_spawn(&missing, &dir).await.err().unwrap();
    assert_eq!(exited.status.code(), Some(2));
    assert!(exited.stderr.contains("--config"), "{}", exited.stderr);
    // No secret in any message.
    assert!(!exited.stderr.contains("BEGIN"));

    // The good one passes `check`.
    let path = dir.join("good.toml");
    std::fs::write(&path, &good).unwrap();
    let (status, stderr) = Pep::check(&path, &dir).await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn sigterm_and_sigint_stop_it_cleanly() {
    for signal in ["TERM", "INT"] {
        let s = Setup::start(&format!("stop-{signal}")).await;
        // Serving, with an open keep-alive connection's worth of work done.
        let r = ask(&s.pep, Kind::Original, "GET", "/whoami", &[]).await;
        assert_eq!(r.status, 401);
        let Setup { pep, .. } = s;
        let log_before = pep.log();
        let status = pep.stop(signal).await;
        assert!(status.success(), "SIG{signal}: {status:?}\n{log_before}");
    }
}
