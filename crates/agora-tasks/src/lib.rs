//! Plumbing shared by every long-running role (chain node, provider,
//! gateway, validator daemon, devnet): one [`Shutdown`] signal, the
//! [`Periodic`] tick loop, binding a listener with a readable error, joining
//! the roles' tasks, [`Failure`], an error that says what was being done,
//! [`serve`], the hardened HTTP server loop every role's API runs on
//! (header-read timeout, `TCP_NODELAY`, in-flight cap, response-head
//! deadline: [`ServeLimits`]), and [`endpoint_client`], the outbound client
//! for registered endpoints (no redirects, public addresses only).
//!
//! It sits below every role crate and depends on agora-types, tokio and the
//! HTTP stack (hyper, axum, reqwest) only, so each role's `start(setup, shutdown)` takes the
//! same [`Shutdown`] and returns [`Task`]s the binary can join together.

mod dial;
mod failure;
mod files;
mod guard;
mod periodic;
mod serve;
mod shutdown;
mod tasks;

pub use dial::{endpoint_client, PublicOnly};
pub use failure::{BoxError, Context, Failure};
pub use files::write_private;
pub use guard::{Refusal, ServeLimits};
pub use periodic::Periodic;
pub use serve::serve;
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use tasks::{bind, join, Task};
