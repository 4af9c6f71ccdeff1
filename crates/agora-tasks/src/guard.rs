//! The per-request half of [`crate::serve`]: a cap on requests in flight
//! (beyond it, a quick 503 instead of a queue), a cap per client address
//! (beyond it, 429, so one client cannot take the whole server), and a
//! deadline on the response head, answered in each server's own error
//! shape by its [`ServeLimits::refuse`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How a hardened server protects itself (see [`crate::serve`]).
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Longest a client may take to send a request's head. hyper runs the
    /// same timer while a kept-alive connection waits for its next request,
    /// so it is also how long an idle connection stays open.
    pub header_read: Duration,
    /// Most requests in flight at once; a streamed body counts until it
    /// ends. One more is refused at once with [`Refusal::Overloaded`].
    pub max_in_flight: usize,
    /// Most of those from one client IP address; one more from it is
    /// refused at once with [`Refusal::ClientBusy`] while others are served.
    pub max_per_client: usize,
    /// Longest a request may take to get its response head (status and
    /// headers, reading the request body included). A streamed response
    /// body is never cut: once the head is out, the stream runs on.
    pub response_head: Duration,
    /// The response for a refused request, in the server's error shape.
    pub refuse: fn(Refusal) -> Response,
}

/// Why the server answered a request itself instead of routing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Already this many requests in flight.
    #[error("the server is busy with {0} requests in flight, its limit; retry shortly")]
    Overloaded(usize),
    /// Already this many requests in flight from the same client address.
    #[error(
        "too many requests in flight from your address ({0}, the limit per client); retry shortly"
    )]
    ClientBusy(usize),
    /// No response head within this long.
    #[error("no response within {0:?}")]
    TimedOut(Duration),
}

impl Refusal {
    /// 503 when overloaded, 429 for a client over its share, 504 when the
    /// response head came too late.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::ClientBusy(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A machine-readable code: `overloaded`, `rate_limit_exceeded` or `timeout`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Overloaded(_) => "overloaded",
            Refusal::ClientBusy(_) => "rate_limit_exceeded",
            Refusal::TimedOut(_) => "timeout",
        }
    }

    /// A plain-text refusal, for servers without an error shape of their own.
    pub fn plain(self) -> Response {
        self.with_retry_after((self.status(), self.to_string()).into_response())
    }

    /// OpenAI's error `type` for it: `rate_limit_error` for a client over
    /// its share, `server_error` otherwise.
    pub fn kind(self) -> &'static str {
        match self {
            Refusal::ClientBusy(_) => "rate_limit_error",
            Refusal::Overloaded(_) | Refusal::TimedOut(_) => "server_error",
        }
    }

    /// Whether a client should retry after a pause (`retry-after: 1`).
    pub fn retryable(self) -> bool {
        matches!(self, Refusal::Overloaded(_) | Refusal::ClientBusy(_))
    }

    /// Add `retry-after: 1` to an overload refusal built by a server.
    pub fn with_retry_after(self, mut response: Response) -> Response {
        if self.retryable() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A router behind the in-flight caps and the response-head deadline.
#[derive(Clone)]
pub(crate) struct Guarded {
    router: Router,
    permits: Arc<Semaphore>,
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
    limits: ServeLimits,
}

/// One request counted against its client's share until dropped.
struct ClientSlot {
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl ClientSlot {
    /// Take one of `ip`'s `max` slots, or `None` if it holds them all.
    fn take(clients: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut map = clients.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: clients.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Guarded {
    /// Guard `router` with `limits`.
    pub(crate) fn new(router: Router, limits: ServeLimits) -> Self {
        Guarded {
            router,
            permits: Arc::new(Semaphore::new(limits.max_in_flight)),
            clients: Arc::default(),
            limits,
        }
    }

    /// Route one request from `client`, or refuse it.
    pub(crate) async fn handle<B>(
        self,
        client: IpAddr,
        request: Request<B>,
    ) -> Result<Response, Infallible>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let limits = self.limits;
        let Some(slot) = ClientSlot::take(&self.clients, client, limits.max_per_client) else {
            return Ok((limits.refuse)(Refusal::ClientBusy(limits.max_per_client)));
        };
        let Ok(permit) = self.permits.try_acquire_owned() else {
            return Ok((limits.refuse)(Refusal::Overloaded(limits.max_in_flight)));
        };
        let mut router = self.router;
        let routed = tower::Service::call(&mut router, request.map(Body::new));
        match tokio::time::timeout(limits.response_head, routed).await {
            Ok(Ok(response)) => Ok(response.map(|body| {
                Body::new(Held {
                    body,
                    _permit: permit,
                    _slot: slot,
                })
            })),
            Ok(Err(never)) => match never {},
            Err(_) => Ok((limits.refuse)(Refusal::TimedOut(limits.response_head))),
        }
    }
}

/// A response body that holds its request's permit and client slot until
/// it is dropped, so a long stream counts as in flight for as long as it runs.
struct Held {
    body: Body,
    _permit: OwnedSemaphorePermit,
    _slot: ClientSlot,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
