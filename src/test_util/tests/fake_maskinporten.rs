//! FakeMaskinporten: metadata, JWKS, tokens and the token endpoint.

use super::*;

#[tokio::test]
async fn metadata_names_the_endpoints() {
    let mp = FakeMaskinporten::start().await;
    assert!(mp.issuer().starts_with("http://127.0.0.1:") && mp.issuer().ends_with('/'));
    let (status, meta) = get_json(&mp.metadata_url()).await;
    assert_eq!(status, 200);
    assert_eq!(meta["issuer"], mp.issuer());
    assert_eq!(meta["jwks_uri"], mp.jwks_uri());
    assert_eq!(meta["token_endpoint"], mp.token_endpoint());
    mp.set_metadata_issuer(Some("https://evil.example/".into()));
    assert_eq!(get_json(&mp.metadata_url()).await.1["issuer"], "https://evil.example/");
    assert_eq!(mp.metadata_requests(), 2);
}

#[tokio::test]
async fn jwks_publishes_the_keys_extras_and_cache_control() {
    let mp = FakeMaskinporten::start().await;
    let (status, jwks) = get_json(&mp.jwks_uri()).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"], json!([mp.signing_key().public_jwk()]));

    let old = mp.signing_key().kid().to_owned();
    let new = mp.rotate_key();
    mp.set_extra_jwks(vec![json!({"kty": "EC", "kid": "ec"})]);
    mp.set_jwks_cache_control(Some("max-age=3600".into()));
    let res = client().get(mp.jwks_uri()).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "max-age=3600");
    let jwks: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [old.as_str(), new.as_str(), "ec"]);
    // A rotation brings other key material, not just another kid.
    assert_ne!(jwks["keys"][0]["n"], jwks["keys"][1]["n"]);
    assert_eq!(mp.jwks_requests(), 2);
}

#[tokio::test]
async fn endpoint_modes_break_the_answers() {
    let mp = FakeMaskinporten::start().await;
    mp.set_jwks_mode(EndpointMode::Garbage);
    let res = client().get(mp.jwks_uri()).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "not json{");
    mp.set_jwks_mode(EndpointMode::Status(503));
    assert_eq!(get_json(&mp.jwks_uri()).await.0, 503);
    mp.set_jwks_mode(EndpointMode::Empty);
    assert_eq!(get_json(&mp.jwks_uri()).await.1, json!({"keys": []}));
    mp.set_jwks_mode(EndpointMode::Oversized);
    let res = client().get(mp.jwks_uri()).send().await.unwrap();
    assert!(res.bytes().await.unwrap().len() > 1 << 20);
    mp.set_metadata_mode(EndpointMode::Hang);
    let hung = client().get(mp.metadata_url()).timeout(Duration::from_millis(200)).send().await;
    assert!(hung.is_err());
    // Requests are counted whatever the mode.
    assert_eq!(mp.metadata_requests(), 1);
    assert_eq!(mp.jwks_requests(), 4);
}

#[tokio::test]
async fn tokens_are_signed_and_verifiable() {
    let mp = FakeMaskinporten::start().await;
    let user = Uuid::new_v4();
    let token = mp.system_user_token(user, "310702641").scope("a:b c:d").sign();
    let (header, claims) = decode_unverified(&token).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "kid": mp.signing_key().kid()}));
    assert_eq!(claims["iss"], mp.issuer());
    assert_eq!(claims["scope"], "a:b c:d");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
    assert_eq!(
        claims["consumer"],
        json!({"authority": "iso6523-actorid-upis", "ID": "0192:991825827"})
    );
    let details = &claims["authorization_details"][0];
    assert_eq!(details["type"], "urn:altinn:systemuser");
    assert_eq!(details["systemuser_id"], json!([user.to_string()]));
    assert_eq!(
        details["systemuser_org"],
        json!({"authority": "iso6523-actorid-upis", "ID": "0192:310702641"})
    );
    assert_eq!(mp.verify_access_token(&token).unwrap(), claims);

    let stranger = TestKey::for_role(KeyRole::Rogue).with_kid("stranger");
    assert!(mp.verify_access_token(&mp.token().signed_by(&stranger).sign()).is_none());
    assert!(mp.verify_access_token(&mp.token().lifetime(Duration::ZERO).sign()).is_none());
    assert!(mp.verify_access_token(&mp.token().alg("none").sign()).is_none());
    assert!(mp.verify_access_token("not a token").is_none());
    mp.add_key(stranger.clone());
    assert!(mp.verify_access_token(&mp.token().signed_by(&stranger).sign()).is_some());
    mp.remove_key("stranger");
    assert!(mp.verify_access_token(&mp.token().signed_by(&stranger).sign()).is_none());
}

/// A fake with `client-1` registered (scope `altinn:authorization/authorize`) under `key`.
async fn with_client() -> (FakeMaskinporten, TestKey) {
    let mp = FakeMaskinporten::start().await;
    let key = TestKey::for_role(KeyRole::Vendor).with_kid("client-key");
    mp.register_client(ClientRegistration::new(
        "client-1",
        &key,
        "923609016",
        &["altinn:authorization/authorize"],
    ));
    (mp, key)
}

#[tokio::test]
async fn token_endpoint_grants_a_good_assertion_once() {
    let (mp, key) = with_client().await;
    let assertion = mp.client_assertion("client-1", &key, "altinn:authorization/authorize").sign();
    let (status, body) = post_token(&mp, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 120);
    assert_eq!(body["scope"], "altinn:authorization/authorize");
    let claims = mp.verify_access_token(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["client_id"], "client-1");
    assert_eq!(claims["consumer"]["ID"], "0192:923609016");

    // Replayed jti.
    let (status, body) = post_token(&mp, &assertion).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let seen = mp.grant_assertions();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["error"], Value::Null);
    assert_eq!(seen[0]["claims"]["iss"], "client-1");
    assert!(seen[1]["error"].as_str().unwrap().contains("jti"));
}

#[tokio::test]
async fn token_endpoint_refuses_bad_assertions() {
    let (mp, key) = with_client().await;
    // Wrong audience.
    let wrong_aud = mp
        .client_assertion("client-1", &key, "altinn:authorization/authorize")
        .claim("aud", json!("https://maskinporten.no/"));
    let (status, body) = post_token(&mp, &wrong_aud.sign()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // Scope not allowed, too long a lifetime, a stranger's signature, garbage.
    let scope = mp
        .client_assertion("client-1", &key, "altinn:authorization/authorize other:scope")
        .sign();
    assert_eq!(post_token(&mp, &scope).await.1["error"], "invalid_scope");
    let long = mp
        .client_assertion("client-1", &key, "altinn:authorization/authorize")
        .lifetime(Duration::from_secs(121))
        .sign();
    assert_eq!(post_token(&mp, &long).await.1["error"], "invalid_grant");
    let forged = mp
        .client_assertion(
            "client-1",
            &TestKey::for_role(KeyRole::Rogue).with_kid("client-key"),
            "altinn:authorization/authorize",
        )
        .sign();
    assert_eq!(post_token(&mp, &forged).await.1["error"], "invalid_grant");
    assert_eq!(post_token(&mp, "garbage").await.1["error"], "invalid_grant");
    // Every assertion is recorded, refused ones too.
    assert_eq!(mp.grant_assertions().len(), 5);
    assert!(mp.grant_assertions().iter().all(|a| a["error"].is_string()));
}

#[tokio::test]
async fn token_endpoint_refuses_other_grant_types() {
    let mp = FakeMaskinporten::start().await;
    let res = client()
        .post(mp.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password");
    let res = res.send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&res.bytes().await.unwrap()).unwrap()["error"],
        "unsupported_grant_type"
    );
    // Counted, but no assertion to record.
    assert_eq!(mp.grant_assertions().len(), 0);
    assert_eq!(mp.token_requests(), 1);
}

#[tokio::test]
async fn jwk_alg_is_configurable() {
    let mp = FakeMaskinporten::start().await;
    assert_eq!(get_json(&mp.jwks_uri()).await.1["keys"][0]["alg"], "RS256");
    mp.set_jwks_key_alg(Some("RS512".into()));
    assert_eq!(get_json(&mp.jwks_uri()).await.1["keys"][0]["alg"], "RS512");
    mp.set_jwks_key_alg(None);
    assert!(get_json(&mp.jwks_uri()).await.1["keys"][0].get("alg").is_none());
}
