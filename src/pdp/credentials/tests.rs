//! Tests of the provider's key and the grant assertion: every key form signs a verifiable
//! assertion, every configuration error is caught by `build`, and `Debug` shows no secrets.

use super::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

/// A test key generated once per run: (PKCS#8 DER, PKCS#1 DER).
fn test_key() -> &'static (Vec<u8>, Vec<u8>) {
    static KEY: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap().as_ref().to_vec();
        // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING }
        let (_, info, _) = der_read(&pkcs8);
        let (_, _, rest) = der_read(info);
        let (_, _, rest) = der_read(rest);
        let (tag, pkcs1, _) = der_read(rest);
        assert_eq!(tag, 0x04);
        let pkcs1 = pkcs1.to_vec();
        (pkcs8, pkcs1)
    })
}

/// One DER TLV: (tag, contents, rest). Test-only: aws-lc exports a private key as PKCS#8 only,
/// and the PKCS#1 and JWK forms the tests feed to the builder are cut out of it with this.
fn der_read(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let (len, hdr) = if input[1] < 0x80 {
        (input[1] as usize, 2)
    } else {
        let n = (input[1] & 0x7f) as usize;
        (input[2..2 + n].iter().fold(0usize, |a, b| (a << 8) | *b as usize), 2 + n)
    };
    (tag, &input[hdr..hdr + len], &input[hdr + len..])
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// The test key as PKCS#8 PEM.
fn pkcs8_pem() -> Vec<u8> {
    pem("PRIVATE KEY", &test_key().0)
}

/// The key as a private JWK, and its public (n, e) in base64url.
fn jwk() -> (Value, String, String) {
    let (_, seq, _) = der_read(&test_key().1);
    let mut rest = seq;
    let mut ints = Vec::new();
    while !rest.is_empty() {
        let (tag, v, r) = der_read(rest);
        assert_eq!(tag, 0x02);
        let v = if v.len() > 1 && v[0] == 0 { &v[1..] } else { v };
        ints.push(URL_SAFE_NO_PAD.encode(v));
        rest = r;
    }
    assert_eq!(ints.len(), 9);
    let jwk = serde_json::json!({
        "kty": "RSA", "kid": "jwk-kid", "alg": "RS256",
        "n": ints[1], "e": ints[2], "d": ints[3], "p": ints[4], "q": ints[5], "dp": ints[6], "dq": ints[7], "qi": ints[8],
    });
    (jwk, ints[1].clone(), ints[2].clone())
}

fn builder() -> MaskinportenCredentialsBuilder {
    MaskinportenCredentials::builder()
        .issuer("https://test.maskinporten.no/")
        .client_id("my-client")
}

#[derive(Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    scope: String,
    iat: u64,
    exp: u64,
    jti: String,
}

fn verify(creds: &MaskinportenCredentials) -> (Header, Claims) {
    let (_, n, e) = jwk();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let token = rt.block_on(creds.assertion(SystemTime::now())).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[creds.issuer()]);
    v.set_issuer(&[creds.client_id()]);
    let data = jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_rsa_components(&n, &e).unwrap(), &v).unwrap();
    (data.header, data.claims)
}

#[test]
fn pkcs8_pkcs1_and_jwk_keys_all_sign() {
    let (jwk, _, _) = jwk();
    // Big-endian magnitudes with a leading zero byte, and no `alg`, are accepted too.
    let mut lenient_jwk = jwk.clone();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    lenient_jwk["n"] = Value::from(URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat()));
    lenient_jwk.as_object_mut().unwrap().remove("alg");
    for (name, b) in [
        ("pkcs8", builder().private_key_pem(&pkcs8_pem()).key_id("kid-1")),
        (
            "pkcs1",
            builder().private_key_pem(&pem("RSA PRIVATE KEY", &test_key().1)).key_id("kid-1"),
        ),
        ("jwk", builder().private_key_jwk(&jwk).key_id("kid-1")),
        ("lenient jwk", builder().private_key_jwk(&lenient_jwk).key_id("kid-1")),
    ] {
        let creds = b.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        let (header, claims) = verify(&creds);
        assert_eq!(header.alg, Algorithm::RS256, "{name}");
        assert_eq!(header.typ.as_deref(), Some("JWT"), "{name}");
        assert_eq!(header.kid.as_deref(), Some("kid-1"), "{name}");
        assert_eq!(header.x5c, None);
        assert_eq!(claims.aud, "https://test.maskinporten.no/");
        assert_eq!(claims.iss, "my-client");
        assert_eq!(claims.scope, AUTHORIZE_SCOPE);
        assert_eq!(claims.exp - claims.iat, 60);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(claims.iat.abs_diff(now) <= 2);
        assert_eq!(uuid::Uuid::parse_str(&claims.jti).unwrap().get_version_num(), 4);
    }
    // The JWK's own kid is the default.
    let creds = builder().private_key_jwk(&jwk).build().unwrap();
    assert_eq!(verify(&creds).0.kid.as_deref(), Some("jwk-kid"));
    // Each assertion has its own jti.
    let creds = builder().private_key_pem(&pkcs8_pem()).key_id("k").build().unwrap();
    assert_ne!(verify(&creds).1.jti, verify(&creds).1.jti);
}

#[test]
fn certificate_chain_goes_in_x5c() {
    let chain = vec![STANDARD.encode(b"leaf-der"), STANDARD.encode(b"ca-der")];
    let creds = builder()
        .private_key_pem(&pkcs8_pem())
        .certificate_chain(chain.clone())
        .scope("a:b c:d")
        .build()
        .unwrap();
    let (header, claims) = verify(&creds);
    assert_eq!(header.x5c, Some(chain));
    assert_eq!(header.kid, None);
    assert_eq!(claims.scope, "a:b c:d");
}

#[test]
fn endpoints() {
    let creds = builder().private_key_pem(&pkcs8_pem()).key_id("k").build().unwrap();
    assert_eq!(creds.token_endpoint(), "https://test.maskinporten.no/token");
    let creds = builder()
        .issuer("https://maskinporten.no")
        .private_key_pem(&pkcs8_pem())
        .key_id("k")
        .build()
        .unwrap();
    assert_eq!(creds.issuer(), "https://maskinporten.no/");
    let creds = builder()
        .issuer("http://127.0.0.1:9999/mp/")
        .token_endpoint("http://127.0.0.1:9999/other/token")
        .private_key_pem(&pkcs8_pem())
        .key_id("k")
        .build()
        .unwrap();
    assert_eq!(creds.token_endpoint(), "http://127.0.0.1:9999/other/token");
}

#[test]
fn configuration_errors() {
    let key = pkcs8_pem();
    let field = |b: MaskinportenCredentialsBuilder| b.build().unwrap_err().field();
    assert_eq!(
        field(MaskinportenCredentials::builder().client_id("c").private_key_pem(&key).key_id("k")),
        "issuer"
    );
    assert_eq!(
        field(builder().issuer("http://maskinporten.no/").private_key_pem(&key).key_id("k")),
        "issuer"
    );
    assert_eq!(
        field(builder().issuer("https://x.example/mp").private_key_pem(&key).key_id("k")),
        "issuer"
    );
    assert_eq!(
        field(builder().issuer("https://x.example/?a=b").private_key_pem(&key).key_id("k")),
        "issuer"
    );
    assert_eq!(
        field(builder().token_endpoint("ftp://x/").private_key_pem(&key).key_id("k")),
        "token_endpoint"
    );
    assert_eq!(
        field(
            MaskinportenCredentials::builder()
                .issuer("https://x.example/")
                .private_key_pem(&key)
                .key_id("k")
        ),
        "client_id"
    );
    assert_eq!(
        field(builder().client_id("has space").private_key_pem(&key).key_id("k")),
        "client_id"
    );
    assert_eq!(field(builder().scope("").private_key_pem(&key).key_id("k")), "scope");
    assert_eq!(field(builder().key_id("k")), "private_key_pem");
    assert_eq!(field(builder().private_key_pem(b"not a pem").key_id("k")), "private_key_pem");
    assert_eq!(field(builder().private_key_pem(&key)), "key_id");
    assert_eq!(
        field(
            builder()
                .private_key_pem(&key)
                .key_id("k")
                .certificate_chain(vec![STANDARD.encode(b"x")])
        ),
        "key_id"
    );
    assert_eq!(
        field(builder().private_key_pem(&key).certificate_chain(vec![])),
        "certificate_chain"
    );
    assert_eq!(
        field(builder().private_key_pem(&key).certificate_chain(vec!["***".into()])),
        "certificate_chain"
    );
    // A public key, or an EC key, is not a signing key.
    let public = pem("PUBLIC KEY", b"\x30\x03\x02\x01\x00");
    assert_eq!(field(builder().private_key_pem(&public).key_id("k")), "private_key_pem");
    let ec = pem("EC PRIVATE KEY", b"\x30\x03\x02\x01\x01");
    assert_eq!(field(builder().private_key_pem(&ec).key_id("k")), "private_key_pem");
    // The PEM label decides the format: PKCS#1 under a PKCS#8 label (and the reverse) is refused.
    let (pkcs8, pkcs1) = test_key();
    for mislabelled in [pem("PRIVATE KEY", pkcs1), pem("RSA PRIVATE KEY", pkcs8)] {
        assert_eq!(field(builder().private_key_pem(&mislabelled).key_id("k")), "private_key_pem");
    }
    // The key must be the first PEM section, as it always had to be.
    let cert_first = [pem("CERTIFICATE", b"\x30\x03\x02\x01\x00"), pkcs8_pem()].concat();
    assert_eq!(field(builder().private_key_pem(&cert_first).key_id("k")), "private_key_pem");
    let (jwk, _, _) = jwk();
    for broken in [
        serde_json::json!("x"),
        serde_json::json!({"kty": "EC"}),
        {
            let mut j = jwk.clone();
            j.as_object_mut().unwrap().remove("qi");
            j
        },
        {
            let mut j = jwk.clone();
            j["d"] = serde_json::json!("!!");
            j
        },
        {
            let mut j = jwk.clone();
            j["alg"] = serde_json::json!("RS512");
            j
        },
        {
            let mut j = jwk.clone();
            j["d"] = j["p"].clone();
            j
        },
    ] {
        assert_eq!(field(builder().private_key_jwk(&broken).key_id("k")), "private_key_jwk", "{broken}");
    }
}

#[test]
fn a_later_setter_never_erases_an_earlier_error() {
    let (jwk, _, _) = jwk();
    // A key that could not be read stays an error, whatever key is given after it.
    let e = builder()
        .private_key_pem(b"not a pem")
        .private_key_jwk(&jwk)
        .key_id("k")
        .build()
        .unwrap_err();
    assert_eq!((e.kind(), e.field()), (crate::ConfigErrorKind::Invalid, "private_key_pem"));
    let e = builder()
        .private_key_jwk(&serde_json::json!({"kty": "EC"}))
        .private_key_pem(&pkcs8_pem())
        .key_id("k")
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "private_key_jwk");
    // Both good: the later one is used.
    let creds = builder().private_key_pem(&pkcs8_pem()).private_key_jwk(&jwk).build().unwrap();
    assert_eq!(verify(&creds).0.kid.as_deref(), Some("jwk-kid"));
}

#[test]
fn configuration_error_kinds() {
    use crate::ConfigErrorKind::{Conflict, Missing};
    let kind = |b: MaskinportenCredentialsBuilder| {
        let e = b.build().unwrap_err();
        (e.kind(), e.field())
    };
    assert_eq!(kind(builder().key_id("k")), (Missing, "private_key_pem"));
    assert_eq!(kind(builder().private_key_pem(&pkcs8_pem())), (Missing, "key_id"));
    assert_eq!(
        kind(
            MaskinportenCredentials::builder()
                .client_id("c")
                .private_key_pem(&pkcs8_pem())
                .key_id("k")
        ),
        (Missing, "issuer")
    );
    assert_eq!(
        kind(
            builder()
                .private_key_pem(&pkcs8_pem())
                .key_id("k")
                .certificate_chain(vec![STANDARD.encode(b"x")])
        ),
        (Conflict, "key_id")
    );
}

#[test]
fn debug_redacts_keys_and_tokens() {
    let key = pkcs8_pem();
    let b = builder().private_key_pem(&key).key_id("kid-1");
    let shown = format!("{b:?}");
    assert!(shown.contains("<redacted>") && !shown.contains("MII"), "{shown}");
    let creds = b.build().unwrap();
    let shown = format!("{creds:?}");
    // The signer's reference and the client; no key material.
    assert!(
        shown.contains("kid-1") && shown.contains("my-client") && !shown.contains("MII"),
        "{shown}"
    );
    let b64 = STANDARD.encode(&test_key().0);
    assert!(!shown.contains(&b64[10..40]));
    // Nor from a JWK: none of its private members.
    let (jwk, _, _) = jwk();
    let b = builder().private_key_jwk(&jwk);
    let shown = format!("{b:?}");
    let shown = format!("{shown} {:?}", b.build().unwrap());
    assert!(shown.contains("<redacted>") && shown.contains("jwk-kid"), "{shown}");
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        let secret = jwk[member].as_str().unwrap();
        assert!(!shown.contains(&secret[..16]), "{member} in {shown}");
    }
    let t = AltinnToken::new("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", SystemTime::now());
    let shown = format!("{t:?}");
    assert!(shown.contains("<redacted>") && !shown.contains("eyJ"), "{shown}");
    assert!(t.bearer_header().unwrap().is_sensitive());
}
