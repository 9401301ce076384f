//! Configuration from a TOML document (feature `config`): a document loads into working layers
//! (FakeMaskinporten and FakeAltinn over loopback HTTP, secrets from a file and an environment
//! variable), and a bad document names its key.

mod support;

use altinn_systemuser::ConfigErrorKind;
use altinn_systemuser::config::{AuthConfig, PdpConfig, Secret};
use altinn_systemuser::test_util::{FakeAltinn, FakeMaskinporten};
use axum::Router;
use axum::routing::get;
use support::{OWNER_ORG, get_with_token, send};
use uuid::Uuid;

/// The key id the provider registered.
const PROVIDER_KID: &str = "provider-key-from-config";

/// The provider's key written to a file, as a mounted secret would be.
fn key_file(name: &str, pem: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.pem", Uuid::new_v4()));
    std::fs::write(&path, format!("{pem}\n")).unwrap();
    path.to_string_lossy().into_owned()
}

fn document(mp: &FakeMaskinporten, altinn: &FakeAltinn, key_path: &str) -> String {
    format!(
        r#"
exempt_paths = ["/healthz"]

[maskinporten]
issuer = "{issuer}"
require_scope = ["skatteetaten:kravogbetalinger"]
leeway = "30s"
max_token_lifetime = "10m"
algorithms = ["RS256"]

[maskinporten.altinn_tokens]
platform = "{platform}"
without_audience = true
max_token_lifetime = "31m"

[system_user]
resource = "kravogbetaling"
party_from_path = "/krav/{{orgnr}}"

[pdp]
platform_url = "{platform}"
subscription_key = {{ env = "CARGO_PKG_NAME" }}
timeout = "3s"
decision_rate_limit = {{ per_second = 5, burst = 10 }}

[pdp.credentials]
issuer = "{issuer}"
client_id = "provider-from-config"
key_id = "{kid}"
private_key_pem = {{ file = "{key_path}" }}
"#,
        issuer = mp.issuer(),
        platform = altinn.platform_url(),
        kid = PROVIDER_KID,
    )
}

#[tokio::test]
async fn a_toml_document_loads_into_working_layers() {
    use altinn_systemuser::test_util::{ClientRegistration, KeyRole, TestKey};
    TestKey::pregenerate(&[KeyRole::Maskinporten, KeyRole::Altinn, KeyRole::Provider]);
    let mp = FakeMaskinporten::start().await;
    // The subscription key comes from an environment variable cargo sets for every test.
    let subscription_key = std::env::var("CARGO_PKG_NAME").unwrap();
    let altinn = FakeAltinn::start(&mp, &subscription_key).await;
    let key = TestKey::for_role(KeyRole::Provider).with_kid(PROVIDER_KID);
    mp.register_client(ClientRegistration::new(
        "provider-from-config",
        &key,
        "974760673",
        &["altinn:authorization/authorize"],
    ));
    let path = key_file("provider", &key.private_key_pkcs8_pem());

    let config: AuthConfig = toml::from_str(&document(&mp, &altinn, &path)).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("PRIVATE KEY") && debug.contains("Secret(file"), "{debug}");
    let (auth, pdp) = config.build_with_pdp().unwrap();
    pdp.check_credentials().await.unwrap();

    let app = Router::new()
        .route("/krav/{orgnr}", get(|| async { "claims" }))
        .route("/healthz", get(|| async { "ok" }))
        .route_layer(auth);
    let su = Uuid::new_v4();
    altinn.permit(su, "read", "kravogbetaling", OWNER_ORG);
    let token = mp.system_user_token(su, OWNER_ORG).scope("skatteetaten:kravogbetalinger").sign();
    let r = get_with_token(&app, &format!("/krav/{OWNER_ORG}"), &token).await;
    assert_eq!(r.status, 200);
    let r = get_with_token(&app, "/krav/923609016", &token).await;
    assert_eq!(r.status, 403, "no Permit for another organisation");
    let r = send(&app, http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(r.status, 200, "exempt");
    // The document's algorithm list is in force: an RS512 token is refused.
    let rs512 = mp
        .system_user_token(su, OWNER_ORG)
        .scope("skatteetaten:kravogbetalinger")
        .alg("RS512")
        .sign();
    assert_eq!(get_with_token(&app, &format!("/krav/{OWNER_ORG}"), &rs512).await.status, 401);
    // Altinn-issued tokens, trusted by the document's [maskinporten.altinn_tokens].
    let from_altinn = altinn
        .system_user_token(su, OWNER_ORG)
        .scope("skatteetaten:kravogbetalinger")
        .sign();
    assert_eq!(get_with_token(&app, &format!("/krav/{OWNER_ORG}"), &from_altinn).await.status, 200);
    // The PDP calls carried the subscription key from the environment.
    let recorded = altinn.pdp_requests();
    assert!(
        recorded
            .iter()
            .all(|r| r.header("ocp-apim-subscription-key") == Some(subscription_key.as_str()))
    );
}

/// The key an error names, for a document that deserializes.
fn build_error_key(doc: &str) -> (String, ConfigErrorKind) {
    let config: AuthConfig = toml::from_str(doc).unwrap();
    let e = config.build().unwrap_err();
    assert!(e.to_string().contains(&e.key()), "{e}");
    (e.key(), e.kind())
}

const GOOD_PDP: &str = r#"
[pdp]
platform_url = "https://platform.tt02.altinn.no"
subscription_key = "abc"
[pdp.credentials]
issuer = "https://test.maskinporten.no/"
client_id = "c"
key_id = "k"
private_key_pem = { file = "/nonexistent/key.pem" }
"#;

#[test]
fn a_bad_document_names_its_key() {
    // Refused by the deserializer, which names the key.
    for (doc, key) in [
        (
            "[maskinporten]\nissuer = \"https://maskinporten.no/\"\nrequire_scopes = [\"a\"]\n",
            "require_scopes",
        ),
        ("[maskinporten]\nleeway = \"thirty seconds\"\n", "leeway"),
        ("[pdp]\ntimeout = 5\n", "timeout"),
        ("[pdp]\ndecision_rate_limit = { per_second = 5 }\n", "burst"),
        ("[system_userr]\nresource = \"x\"\n", "system_userr"),
    ] {
        let e = toml::from_str::<AuthConfig>(doc).unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }

    // Refused by the builders, with the key and its section.
    assert_eq!(build_error_key("[maskinporten]\n").0, "maskinporten.issuer");
    let mp = "[maskinporten]\nissuer = \"https://test.maskinporten.no/\"\nrequire_scope = [\"s\"]\n";
    assert_eq!(build_error_key(&format!("{mp}leeway = \"10m\"\n")).0, "maskinporten.leeway");
    assert_eq!(
        build_error_key(&format!("{mp}algorithms = [\"HS256\"]\n")),
        ("maskinporten.algorithms".into(), ConfigErrorKind::Invalid)
    );
    // The PDP's credentials come first: the key file cannot be read.
    let (key, _) = build_error_key(&format!("{mp}{GOOD_PDP}"));
    assert_eq!(key, "pdp.credentials.private_key_pem");
    let no_client = GOOD_PDP.replace("client_id = \"c\"\n", "");
    let pem = key_file(
        "config-error",
        &altinn_systemuser::test_util::TestKey::for_role(altinn_systemuser::test_util::KeyRole::Rogue).private_key_pkcs8_pem(),
    );
    let no_client = no_client.replace("/nonexistent/key.pem", &pem);
    assert_eq!(
        build_error_key(&format!("{mp}{no_client}")),
        ("pdp.credentials.client_id".into(), ConfigErrorKind::Missing)
    );
    let with_key = GOOD_PDP.replace("/nonexistent/key.pem", &pem);
    let env_missing = with_key.replace(
        "subscription_key = \"abc\"",
        "subscription_key = { env = \"ALTINN_SYSTEMUSER_TEST_UNSET_VARIABLE\" }",
    );
    let (key, kind) = build_error_key(&format!("{mp}{env_missing}"));
    assert_eq!((key.as_str(), kind), ("pdp.subscription_key", ConfigErrorKind::Missing));
    // The system-user layer: no resource, then two party sources.
    assert_eq!(build_error_key(&format!("{mp}{with_key}")).0, "system_user.resource");
    let two_parties =
        format!("{mp}{with_key}[system_user]\nresource = \"krav\"\nparty_from_path = \"/k/{{o}}\"\nparty_from_header = \"x-party\"\n");
    assert_eq!(
        build_error_key(&two_parties),
        ("system_user.party_from_path".into(), ConfigErrorKind::Conflict)
    );
    let bad_exempt = format!("exempt_paths = [\"healthz\"]\n{mp}{with_key}[system_user]\nresource = \"krav\"\n");
    assert_eq!(build_error_key(&bad_exempt).0, "exempt_path");
}

#[test]
fn secrets_are_redacted_and_read_from_files() {
    let config: PdpConfig = toml::from_str("subscription_key = \"s3cr3t-subscription\"\n").unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cr3t-subscription") && debug.contains("<redacted>"), "{debug}");
    let secret: Secret = toml::from_str::<toml::Table>("s = { file = \"/nonexistent/x\" }").unwrap()["s"]
        .clone()
        .try_into()
        .unwrap();
    assert!(format!("{secret:?}").contains("/nonexistent/x"));
}
