//! [`serve`]: what every agora HTTP server runs instead of `axum::serve`.
//! It accepts with `TCP_NODELAY`, drops clients that trickle their request
//! head (slowloris), caps requests in flight, in all and per client
//! address, and bounds the wait for a response head (see [`ServeLimits`]), and shuts down gracefully: on
//! `shutdown` it stops accepting, lets each connection finish its request
//! and waits for them all.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::guard::Guarded;
use crate::ServeLimits;

/// How long to back off when accepting fails for want of resources
/// (too many open files), instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serve `router` on `listener` under `limits` until `shutdown` resolves,
/// then wait for the open connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let guarded = Guarded::new(router, limits);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    // Every connection holds a `closed` receiver; `stop` tells them to wind down.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (closed_tx, closed_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    backoff(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let guarded = guarded.clone();
        let http = http.clone();
        let stop = stop_rx.clone();
        let closed = closed_rx.clone();
        tokio::spawn(async move {
            connection(stream, peer, &http, guarded, stop).await;
            drop(closed);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(closed_rx);
    closed_tx.closed().await;
    Ok(())
}

/// Accept one connection with `TCP_NODELAY` set: replies are small and
/// written in pieces, and Nagle's algorithm meeting the client's delayed
/// ACK stalls each kept-alive exchange by ~40 ms.
pub(crate) async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    Ok((stream, peer))
}

/// Errors that concern one connection only are skipped at once; others
/// (out of file descriptors) get a short pause so the loop does not spin.
async fn backoff(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// Serve one connection until it closes, or until `stop` and its current
/// request ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    http: &http1::Builder,
    guarded: Guarded,
    mut stop: watch::Receiver<bool>,
) {
    let client = peer.ip();
    let service =
        hyper::service::service_fn(move |request| guarded.clone().handle(client, request));
    let conn = http.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopping(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once `stop` says so (or its sender is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = accept(&listener).await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(stream.nodelay().unwrap(), "TCP_NODELAY is off");
        // The default it overrides is off, so the check above means something.
        assert!(!client.nodelay().unwrap());
    }
}
