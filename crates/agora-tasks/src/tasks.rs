//! The roles' tasks: listeners bound with a readable error, and joining
//! every task of a process so the first failure ends them all.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Context, Failure};

/// A role's background task (a server, block production, an auditor).
pub type Task = JoinHandle<Result<(), Failure>>;

/// Bind a listener with a readable error.
pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, Failure> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what}"))
}

/// Wait for every task to end; the first failure ends the wait (and the
/// process) at once, so a dead server never leaves the others running alone.
pub async fn join(mut tasks: Vec<Task>) -> Result<(), Failure> {
    while !tasks.is_empty() {
        let (outcome, _, rest) = futures::future::select_all(tasks).await;
        outcome.context("task panicked")??;
        tasks = rest;
    }
    Ok(())
}
