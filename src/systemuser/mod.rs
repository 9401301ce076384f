//! Layer 2: ask the Altinn PDP whether the system user may do this.
//!
//! | file | role |
//! |---|---|
//! | `layer.rs` | [`SystemUserLayer`] and its builder |
//! | `service.rs` | [`SystemUserService`]: verified token → PDP decision → extensions |
//! | `target.rs` | how resource, action and party are derived from a request |
//! | `principal.rs` | [`SystemUser`], the authorized principal |
//!
//! The PDP itself is called from [`crate::pdp`].

mod layer;
mod principal;
mod service;
mod target;

pub use layer::{SystemUserLayer, SystemUserLayerBuilder};
pub use principal::SystemUser;
pub use service::SystemUserService;
pub use target::action_for_method;
