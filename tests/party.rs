//! One spelling of the party: a party taken from the request (path or header) is accepted only
//! in its canonical form, and a path template must match the path's shape, so the party the PDP
//! is asked about is always the string the handler sees. Through the real stack: an axum router
//! behind both layers, FakeMaskinporten and FakeAltinn on 127.0.0.1:0.

mod support;

use altinn_systemuser::org::Party;
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer, SystemUserLayerBuilder};
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use http::Request;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{Fakes, ORG_ATTR, OTHER_ORG, PERSON, PERSON_ATTR, RESOURCE, Reply, assert_problem, attributes, send};
use uuid::Uuid;

/// The fakes, a system user permitted to `read` for [`OTHER_ORG`] and [`PERSON`], its token,
/// and a count of handler calls.
struct Env {
    fakes: Fakes,
    token: String,
    calls: Arc<AtomicUsize>,
}

impl Env {
    async fn start() -> Env {
        let fakes = Fakes::start().await;
        let su = Uuid::new_v4();
        fakes.altinn.permit(su, "read", RESOURCE, OTHER_ORG);
        fakes.altinn.permit(su, "read", RESOURCE, PERSON);
        let token = fakes.system_user_token(su);
        Env {
            fakes,
            token,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn layer(&self, party: impl FnOnce(SystemUserLayerBuilder) -> SystemUserLayerBuilder) -> SystemUserLayer {
        party(SystemUserLayer::builder().pdp(self.fakes.pdp()).resource(RESOURCE))
            .build()
            .expect("valid layer")
    }

    /// A handler for a route with one path parameter: reports the parameter as axum decoded it
    /// and the party the system user was authorized for.
    fn handler(&self) -> axum::routing::MethodRouter {
        let calls = self.calls.clone();
        get(move |Path(param): Path<String>, su: SystemUser| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let party = match su.party() {
                Party::Organisation(o) => o.to_string(),
                Party::Person(p) => p.as_str().to_owned(),
            };
            axum::Json(json!({ "param": param, "party": party }))
        })
    }

    async fn get(&self, app: &Router, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::get(path).header("authorization", format!("Bearer {}", self.token));
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        send(app, req.body(Body::empty()).unwrap()).await
    }

    fn pdp_count(&self) -> usize {
        self.fakes.altinn.pdp_request_count()
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The party attributes of the `i`th PDP call.
    fn asked_party(&self, i: usize) -> Vec<(String, String)> {
        let req = &self.fakes.altinn.pdp_requests()[i];
        let json: Value = req.json().expect("the PDP request is JSON");
        attributes(&json["Request"]["Resource"][0])
            .into_iter()
            .filter(|(id, _)| id == ORG_ATTR || id == PERSON_ATTR)
            .collect()
    }

    /// A permitted answer: the handler's path parameter, the party it was given and the party
    /// the PDP was asked about (the `i`th call) are one and the same string.
    fn assert_permitted_as(&self, r: &Reply, i: usize, attr: &str, party: &str) {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json(), json!({ "param": party, "party": party }));
        assert_eq!(self.asked_party(i), vec![(attr.to_owned(), party.to_owned())]);
    }
}

/// Every other spelling a client could try for [`OTHER_ORG`] (923609016) in a path segment.
const OTHER_SPELLINGS: &[&str] = &[
    "0192:923609016",
    "0192%3A923609016",
    "%30192:923609016",
    "%39%32%33%36%30%39%30%31%36",
    "+923609016",
    "%2B923609016",
    "%20923609016",
    "923609016%20",
    "923609016%0A",
    "0923609016",
    "923%20609%20016",
    // Fullwidth digits, percent-encoded UTF-8.
    "%EF%BC%99%EF%BC%92%EF%BC%93%EF%BC%96%EF%BC%90%EF%BC%99%EF%BC%90%EF%BC%91%EF%BC%96",
];

#[tokio::test]
async fn the_iso6523_form_in_the_path_is_refused_without_asking_the_pdp() {
    let env = Env::start().await;
    let app = Router::new()
        .route("/krav/{orgnr}", env.handler())
        .route_layer(env.layer(|l| l.party_from_path("/krav/{orgnr}")))
        .route_layer(env.fakes.maskinporten_layer());

    // The handler would see `0192:923609016`: the layer must not authorize it as 923609016.
    let r = env.get(&app, "/krav/0192:923609016", &[]).await;
    assert_problem(&r, 400, "invalid-party");
    assert_eq!(env.pdp_count(), 0);
    assert_eq!(env.calls(), 0);

    for spelling in OTHER_SPELLINGS {
        let r = env.get(&app, &format!("/krav/{spelling}"), &[]).await;
        assert_problem(&r, 400, "invalid-party");
    }
    assert_eq!(env.pdp_count(), 0);
    assert_eq!(env.calls(), 0);

    // The canonical form is asked about, and permitted.
    let r = env.get(&app, &format!("/krav/{OTHER_ORG}"), &[]).await;
    env.assert_permitted_as(&r, 0, ORG_ATTR, OTHER_ORG);
    // A person, in its canonical form too.
    let r = env.get(&app, &format!("/krav/{PERSON}"), &[]).await;
    env.assert_permitted_as(&r, 1, PERSON_ATTR, PERSON);
    assert_eq!(env.calls(), 2);
}

#[tokio::test]
async fn a_path_of_another_shape_than_the_template_is_refused() {
    let env = Env::start().await;
    // The layer in front of the routing (`layer`, not `route_layer`), so it sees every path.
    let app = Router::new()
        .route("/krav/{orgnr}", env.handler())
        .route("/betaling/{orgnr}", env.handler())
        .layer(env.layer(|l| l.party_from_path("/krav/{orgnr}")))
        .layer(env.fakes.maskinporten_layer());

    // `/betaling/923609016` has the party's segment at the same index, but not the template's
    // literal: the layer cannot tell what the party is there.
    for path in [
        format!("/betaling/{OTHER_ORG}"),
        format!("/KRAV/{OTHER_ORG}"),
        format!("/kr%61v/{OTHER_ORG}"),
        format!("/krav/{OTHER_ORG}/"),
        format!("/krav//{OTHER_ORG}"),
        format!("//krav/{OTHER_ORG}"),
        format!("/krav/{OTHER_ORG}/extra"),
        "/krav".to_owned(),
        "/krav/".to_owned(),
    ] {
        let r = env.get(&app, &path, &[]).await;
        assert_problem(&r, 400, "invalid-party");
    }
    assert_eq!(env.pdp_count(), 0);
    assert_eq!(env.calls(), 0);

    let r = env.get(&app, &format!("/krav/{OTHER_ORG}"), &[]).await;
    env.assert_permitted_as(&r, 0, ORG_ATTR, OTHER_ORG);
}

#[tokio::test]
async fn inside_router_nest_the_template_is_the_path_the_layer_sees() {
    let env = Env::start().await;
    let path = format!("/api/krav/{OTHER_ORG}");

    // A route_layer inside the nested router sees the path without the prefix.
    let inner = Router::new()
        .route("/krav/{orgnr}", env.handler())
        .route_layer(env.layer(|l| l.party_from_path("/krav/{orgnr}")));
    let app = Router::new().nest("/api", inner).layer(env.fakes.maskinporten_layer());
    env.assert_permitted_as(&env.get(&app, &path, &[]).await, 0, ORG_ATTR, OTHER_ORG);

    // A layer on the outer router sees the whole path: its template names the prefix...
    let outer = |template: &'static str| {
        Router::new()
            .nest("/api", Router::new().route("/krav/{orgnr}", env.handler()))
            .layer(env.layer(|l| l.party_from_path(template)))
            .layer(env.fakes.maskinporten_layer())
    };
    let r = env.get(&outer("/api/krav/{orgnr}"), &path, &[]).await;
    assert_eq!(r.status, 200);
    // ... and one without it refuses every request instead of reading another segment.
    let r = env.get(&outer("/krav/{orgnr}"), &path, &[]).await;
    assert_problem(&r, 400, "invalid-party");
    let r = env
        .get(&outer("/{orgnr}/krav"), &format!("/{OTHER_ORG}/krav/{OTHER_ORG}"), &[])
        .await;
    assert_problem(&r, 400, "invalid-party");
    assert_eq!(env.calls(), 2);
}

#[tokio::test]
async fn a_path_segment_by_index_is_read_in_its_canonical_form_only() {
    let env = Env::start().await;
    let app = Router::new()
        .route("/krav/{orgnr}", env.handler())
        .route_layer(env.layer(|l| l.party_from_path_segment(1)))
        .route_layer(env.fakes.maskinporten_layer());
    for spelling in OTHER_SPELLINGS {
        assert_problem(&env.get(&app, &format!("/krav/{spelling}"), &[]).await, 400, "invalid-party");
    }
    assert_eq!(env.pdp_count(), 0);
    let r = env.get(&app, &format!("/krav/{OTHER_ORG}"), &[]).await;
    env.assert_permitted_as(&r, 0, ORG_ATTR, OTHER_ORG);
}

#[tokio::test]
async fn a_party_header_is_read_in_its_canonical_form_only() {
    let env = Env::start().await;
    let calls = env.calls.clone();
    let app = Router::new()
        .route(
            "/krav",
            get(move |su: SystemUser| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                su.party().org_number().map(|o| o.to_string()).unwrap_or_default()
            }),
        )
        .route_layer(env.layer(|l| l.party_from_header("x-altinn-party")))
        .route_layer(env.fakes.maskinporten_layer());

    for value in [
        "0192:923609016",
        " 923609016",
        "923609016 ",
        "\t923609016",
        "+923609016",
        "%39%32%33609016",
        "923 609 016",
        "0923609016",
    ] {
        let r = env.get(&app, "/krav", &[("x-altinn-party", value)]).await;
        assert_problem(&r, 400, "invalid-party");
    }
    // Not ASCII at all (fullwidth digits as raw UTF-8 bytes).
    let req = Request::get("/krav")
        .header("authorization", format!("Bearer {}", env.token))
        .header(
            "x-altinn-party",
            http::HeaderValue::from_bytes("９２３６０９０１６".as_bytes()).unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    assert_problem(&send(&app, req).await, 400, "invalid-party");
    assert_eq!(env.pdp_count(), 0);
    assert_eq!(env.calls(), 0);

    let r = env.get(&app, "/krav", &[("x-altinn-party", OTHER_ORG)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], OTHER_ORG.as_bytes());
    assert_eq!(env.asked_party(0), vec![(ORG_ATTR.to_owned(), OTHER_ORG.to_owned())]);
}
