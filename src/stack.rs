//! [`AuthLayer`]: both layers in the right order, in one call, with paths that skip both.
//!
//! The system-user layer needs the verified token that the Maskinporten layer puts in the
//! request extensions, so the Maskinporten layer must be the outer one; added the other way
//! round, every request is a 500 (`layer-missing`). `AuthLayer` cannot be added the wrong way
//! round. Its service is `MaskinportenService<SystemUserService<S>>`, exactly what the two
//! layers give when added in the right order.
//!
//! Exempt paths (exact, byte for byte) pass both layers untouched, without a principal: health
//! checks (`/healthz`, gRPC's `/grpc.health.v1.Health/Check`), gRPC reflection, metrics. Every
//! other path still needs a token and a Permit.
//!
//! **Caveats.** An exemption covers every method on that path, and whatever handler serves it:
//! if a route with a parameter (`/{id}`) also matches an exempt literal (`/healthz`), that request
//! runs without a principal, and a handler that takes `Option<SystemUser>` proceeds without one.
//! Exempt only paths that your router serves with a handler that needs no caller.
//!
//! ```
//! use altinn_systemuser::maskinporten::MaskinportenLayer;
//! use altinn_systemuser::stack::AuthLayer;
//! use altinn_systemuser::systemuser::SystemUserLayer;
//! # fn run(maskinporten: MaskinportenLayer, system_user: SystemUserLayer) -> Result<(), altinn_systemuser::ConfigError> {
//! let auth = AuthLayer::builder(maskinporten, system_user)
//!     .exempt_grpc_health()
//!     .exempt_path("/healthz")
//!     .build()?;
//! // Router::new().route(...).route_layer(auth), or tonic's Server::builder().layer(auth)
//! # let _ = auth; Ok(()) }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::ConfigError;
use crate::maskinporten::{MaskinportenLayer, MaskinportenService};
use crate::systemuser::{SystemUserLayer, SystemUserService};

/// The gRPC health-checking service's methods (`grpc.health.v1.Health`).
pub const GRPC_HEALTH_PATHS: [&str; 2] = ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"];
/// gRPC server reflection's methods (`v1` and `v1alpha`).
pub const GRPC_REFLECTION_PATHS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];
/// The most exempt paths accepted.
pub const MAX_EXEMPT_PATHS: usize = 64;

/// Paths that pass both layers. Exact match on the request's path (no query, no decoding).
#[derive(Debug, Default)]
pub(crate) struct ExemptPaths(HashSet<Box<str>>);

impl ExemptPaths {
    /// Whether a service with these exempt paths (if any) lets `path` through untouched.
    pub(crate) fn skip(exempt: &Option<Arc<ExemptPaths>>, path: &str) -> bool {
        exempt.as_ref().is_some_and(|e| e.0.contains(path))
    }
}

/// The Maskinporten layer, then the system-user layer, as one layer; optionally with paths that
/// skip both. Cheap to clone.
#[derive(Clone)]
pub struct AuthLayer {
    maskinporten: MaskinportenLayer,
    system_user: SystemUserLayer,
    exempt: Option<Arc<ExemptPaths>>,
}

impl AuthLayer {
    /// Both layers in the right order, no exempt paths.
    pub fn new(maskinporten: MaskinportenLayer, system_user: SystemUserLayer) -> Self {
        AuthLayer {
            maskinporten,
            system_user,
            exempt: None,
        }
    }

    /// A builder, for exempt paths.
    pub fn builder(maskinporten: MaskinportenLayer, system_user: SystemUserLayer) -> AuthLayerBuilder {
        AuthLayerBuilder {
            maskinporten,
            system_user,
            exempt: Vec::new(),
        }
    }

    /// The Maskinporten layer (for its key store).
    pub fn maskinporten(&self) -> &MaskinportenLayer {
        &self.maskinporten
    }

    /// The system-user layer.
    pub fn system_user(&self) -> &SystemUserLayer {
        &self.system_user
    }

    /// Whether requests for `path` skip both layers.
    pub fn is_exempt(&self, path: &str) -> bool {
        ExemptPaths::skip(&self.exempt, path)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = MaskinportenService<SystemUserService<S>>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = self.system_user.layer(inner).with_exempt(self.exempt.clone());
        self.maskinporten.layer(inner).with_exempt(self.exempt.clone())
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut exempt: Vec<&str> = self.exempt.iter().flat_map(|e| e.0.iter().map(|p| &**p)).collect();
        exempt.sort_unstable();
        f.debug_struct("AuthLayer")
            .field("maskinporten", &self.maskinporten)
            .field("system_user", &self.system_user)
            .field("exempt", &exempt)
            .finish()
    }
}

/// Builds an [`AuthLayer`] with exempt paths.
#[must_use]
#[derive(Debug)]
pub struct AuthLayerBuilder {
    maskinporten: MaskinportenLayer,
    system_user: SystemUserLayer,
    exempt: Vec<String>,
}

impl AuthLayerBuilder {
    /// Requests for exactly this path (for example `/healthz`) skip both layers and reach the
    /// service without a principal. It must start with `/` and hold no `?`, `#`, `%`, `..` or
    /// `//`: the path is compared byte for byte with the request's.
    pub fn exempt_path(mut self, path: impl Into<String>) -> Self {
        self.exempt.push(path.into());
        self
    }

    /// Exempts several paths (see [`exempt_path`](Self::exempt_path)).
    pub fn exempt_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.exempt.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Exempts gRPC health checks ([`GRPC_HEALTH_PATHS`]).
    pub fn exempt_grpc_health(self) -> Self {
        self.exempt_paths(GRPC_HEALTH_PATHS)
    }

    /// Exempts gRPC server reflection ([`GRPC_REFLECTION_PATHS`]).
    pub fn exempt_grpc_reflection(self) -> Self {
        self.exempt_paths(GRPC_REFLECTION_PATHS)
    }

    /// Checks the exempt paths (`ConfigError` field `exempt_path`).
    pub fn build(self) -> Result<AuthLayer, ConfigError> {
        if self.exempt.len() > MAX_EXEMPT_PATHS {
            return Err(ConfigError::new("exempt_path", format!("at most {MAX_EXEMPT_PATHS} paths")));
        }
        for p in &self.exempt {
            let ok = p.starts_with('/')
                && p.len() <= 1024
                && !p.contains(['?', '#', '%'])
                && !p.contains("..")
                && !p.contains("//")
                && p.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(ConfigError::new(
                    "exempt_path",
                    format!("{p:?}: a path starts with '/' and holds no '?', '#', '%', '..', '//' or spaces"),
                ));
            }
        }
        let exempt = (!self.exempt.is_empty()).then(|| Arc::new(ExemptPaths(self.exempt.into_iter().map(Into::into).collect())));
        Ok(AuthLayer {
            maskinporten: self.maskinporten,
            system_user: self.system_user,
            exempt,
        })
    }
}
