//! `altinn-pep`, the program: spawned from the built binary against FakeMaskinporten and
//! FakeAltinn, asked directly (HTTP, and gRPC as Envoy asks) and through real nginx and Caddy,
//! all on loopback.
//!
//! nginx and Caddy come from Debian's packages (`apt-get install -y nginx caddy`; `.ci/run`
//! installs them); the proxy tests fail with that command when they are missing.

#[allow(dead_code)]
#[path = "../../examples/pep_fakes.rs"]
mod pep_fakes;

mod cli;
mod decision;
mod docs;
mod doctor;
mod explain;
mod ext_authz;
mod harness;
mod oneshot;
mod proxies;
mod traefik;
