//! The README's section "Protecting an API in any language": its configurations are the files
//! in `deploy/` that the tests run, word for word, and its commands name what exists.

use crate::harness::{PRINCIPAL_HEADERS, Pep, tmp_dir};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The body of every fenced block in the README, whatever its language.
fn fenced_blocks(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.starts_with("```") => current = Some(Vec::new()),
            Some(body) if line.starts_with("```") => {
                out.push(body.join("\n") + "\n");
                current = None;
            }
            Some(body) => body.push(line),
            None => {}
        }
    }
    out
}

#[test]
fn the_readme_shows_the_tested_configurations_word_for_word() {
    let readme = readme();
    let section = readme
        .split("## Protecting an API in any language")
        .nth(1)
        .expect("the README section");
    let blocks = fenced_blocks(section);
    for (file, text) in [
        ("deploy/altinn-pep.toml", include_str!("../../deploy/altinn-pep.toml")),
        ("deploy/nginx.conf", include_str!("../../deploy/nginx.conf")),
        ("deploy/Caddyfile", include_str!("../../deploy/Caddyfile")),
        ("deploy/traefik.yml", include_str!("../../deploy/traefik.yml")),
        ("deploy/envoy.yaml", include_str!("../../deploy/envoy.yaml")),
        ("deploy/istio.yaml", include_str!("../../deploy/istio.yaml")),
    ] {
        assert!(blocks.iter().any(|b| b == text), "{file} is in the README section as it is");
        assert!(section.contains(file), "the README names {file}");
    }
}

#[test]
fn the_readme_names_the_install_and_run_commands() {
    let readme = readme();
    for line in [
        "cargo install --path . --features pep",
        "cargo run --features pep --bin altinn-pep -- serve --config altinn-pep.toml",
        "altinn-pep serve --config altinn-pep.toml",
    ] {
        assert!(readme.contains(line), "{line}");
    }
    let cargo: toml::Table = toml::from_str(include_str!("../../Cargo.toml")).unwrap();
    assert!(cargo["features"].as_table().unwrap().contains_key("pep"));
    let ci = include_str!("../../.ci/run");
    assert!(ci.contains("apt-get install") && ci.contains("nginx") && ci.contains("caddy"));
}

#[test]
fn every_proxy_configuration_handles_every_principal_header() {
    let nginx = include_str!("../../deploy/nginx.conf");
    let caddy = include_str!("../../deploy/Caddyfile");
    let copy = caddy
        .lines()
        .find(|l| l.trim_start().starts_with("copy_headers "))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>();
    assert_eq!(copy, PRINCIPAL_HEADERS);
    for h in PRINCIPAL_HEADERS {
        let var = format!("$upstream_http_{}", h.to_ascii_lowercase().replace('-', "_"));
        assert!(nginx.contains(&var), "nginx reads {h}");
        let set = nginx
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("proxy_set_header {h} ")))
            .unwrap_or_else(|| panic!("nginx sets {h} on the way to the API"));
        assert!(set.contains("$altinn_"), "{set}");
    }
    // Caddy removes what the client sent before it asks.
    let strip = caddy.find("request_header -X-Altinn*").unwrap();
    assert!(strip < caddy.find("\tforward_auth 127.0.0.1:8081").unwrap());
}

/// The lines of a YAML file without comments, trimmed.
fn yaml_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| l.split(" #").next().unwrap().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn the_envoy_and_istio_configurations_fit_the_program() {
    let toml = include_str!("../../deploy/altinn-pep.toml");
    let envoy = include_str!("../../deploy/envoy.yaml");
    let istio = include_str!("../../deploy/istio.yaml");
    // The example's ext_authz line (taken in by the ext_authz tests) names the port both use.
    let line = toml
        .lines()
        .find(|l| l.starts_with(crate::ext_authz::EXAMPLE_LINE))
        .expect("deploy/altinn-pep.toml has the ext_authz line");
    let port = line.split('"').nth(1).unwrap().rsplit_once(':').unwrap().1;

    let e = yaml_lines(envoy);
    for expected in [
        "- name: envoy.filters.http.ext_authz",
        "transport_api_version: V3",
        "envoy_grpc: { cluster_name: altinn-pep }",
        "failure_mode_allow: false",
        "status_on_error: { code: ServiceUnavailable }",
        "http2_protocol_options: {}",
        "headers_with_underscores_action: REJECT_REQUEST",
        "- name: altinn-pep",
        &format!("socket_address: {{ address: 127.0.0.1, port_value: {port} }}"),
    ] {
        assert!(e.contains(&expected), "envoy.yaml: {expected}");
    }
    // altinn-pep reads no body; ext_authz comes before the router.
    assert!(!e.iter().any(|l| l.starts_with("with_request_body")));
    let position = |l: &str| e.iter().position(|x| *x == l).unwrap();
    assert!(position("- name: envoy.filters.http.ext_authz") < position("- name: envoy.filters.http.router"));

    let i = yaml_lines(istio);
    for expected in [
        "- name: altinn-pep",
        "envoyExtAuthzGrpc:",
        &format!("port: {port}"),
        "failOpen: false",
        "action: CUSTOM",
        "provider:",
        "name: altinn-pep",
        "appProtocol: grpc",
    ] {
        assert!(i.contains(&expected), "istio.yaml: {expected}");
    }
    // Only the API's sidecars may call altinn-pep's ext_authz port.
    assert!(i.contains(&"action: ALLOW"), "istio.yaml: an ALLOW policy for altinn-pep's callers");
    assert!(
        i.contains(&format!("ports: [\"{port}\"]").as_str()),
        "istio.yaml: the ALLOW policy names port {port}"
    );
    // The policy names the provider that the mesh configuration defines.
    let provider = i.iter().position(|l| *l == "provider:").unwrap();
    assert_eq!(i[provider + 1], "name: altinn-pep");

    // The README says what altinn-pep does with the principal headers for Envoy.
    let readme = readme();
    let section = readme.split("### Envoy and Istio").nth(1).expect("the README's Envoy section");
    for word in [
        "OVERWRITE_IF_EXISTS_OR_ADD",
        "headers_to_remove",
        "denied_response",
        "No Envoy binary",
    ] {
        assert!(section.contains(word), "{word}");
    }
}

#[tokio::test]
async fn the_example_configuration_is_complete_but_for_its_secret_file() {
    let dir = tmp_dir("readme-config");
    let path = dir.join("altinn-pep.toml");
    std::fs::write(&path, include_str!("../../deploy/altinn-pep.toml")).unwrap();
    let (status, stderr) = Pep::check(&path, &dir).await;
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("invalid configuration: pdp.credentials.private_key_pem: file /run/secrets/maskinporten.pem"),
        "{stderr}"
    );
}
