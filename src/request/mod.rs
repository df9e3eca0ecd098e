//! Who is asking, and what one request may still cost: the values every layer below the
//! HTTP server is handed with a request (a [`Caller`], its [`Identity`] and [`Role`]), and the
//! per-caller rate limits counted before a request runs.
//!
//! May import: `model`, `error`. Authentication itself (keys, JWTs) is `crate::auth`, which
//! produces an [`Identity`].

mod caller;
mod identity;
pub mod rate_limit;

pub use caller::{Caller, CallerKey};
pub use identity::{AccountScope, Identity, Role};
