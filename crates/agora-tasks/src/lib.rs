//! Plumbing shared by every long-running role (chain node, provider,
//! gateway, validator daemon, devnet): one [`Shutdown`] signal, the
//! [`Periodic`] tick loop, binding a listener with a readable error, joining
//! the roles' tasks, and [`Failure`], an error that says what was being done.
//!
//! It sits below every role crate and depends on tokio only, so each role's
//! `start(setup, shutdown)` takes the same [`Shutdown`] and returns [`Task`]s
//! the binary can join together.

mod dial;
mod failure;
mod periodic;
mod shutdown;
mod tasks;

pub use dial::{endpoint_client, PublicOnly};
pub use failure::{BoxError, Context, Failure};
pub use periodic::Periodic;
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use tasks::{bind, join, Task};
