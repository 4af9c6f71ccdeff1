//! The per-request half of [`crate::serve`]: a cap on requests in flight
//! (beyond it, a quick 503 instead of a queue) and a deadline on the
//! response head, answered in each server's own error shape by its
//! [`ServeLimits::refuse`].

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
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
    /// No response head within this long.
    #[error("no response within {0:?}")]
    TimedOut(Duration),
}

impl Refusal {
    /// 503 when overloaded, 504 when the response head came too late.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A machine-readable code: `overloaded` or `timeout`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Overloaded(_) => "overloaded",
            Refusal::TimedOut(_) => "timeout",
        }
    }

    /// A plain-text refusal, for servers without an error shape of their own.
    pub fn plain(self) -> Response {
        self.with_retry_after((self.status(), self.to_string()).into_response())
    }

    /// Add `retry-after: 1` to an overload refusal built by a server.
    pub fn with_retry_after(self, mut response: Response) -> Response {
        if let Refusal::Overloaded(_) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A router behind the in-flight cap and the response-head deadline.
#[derive(Clone)]
pub(crate) struct Guarded {
    router: Router,
    permits: Arc<Semaphore>,
    limits: ServeLimits,
}

impl Guarded {
    /// Guard `router` with `limits`.
    pub(crate) fn new(router: Router, limits: ServeLimits) -> Self {
        Guarded {
            router,
            permits: Arc::new(Semaphore::new(limits.max_in_flight)),
            limits,
        }
    }

    /// Route one request, or refuse it.
    pub(crate) async fn handle<B>(self, request: Request<B>) -> Result<Response, Infallible>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let limits = self.limits;
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
                })
            })),
            Ok(Err(never)) => match never {},
            Err(_) => Ok((limits.refuse)(Refusal::TimedOut(limits.response_head))),
        }
    }
}

/// A response body that holds its request's permit until it is dropped, so
/// a long stream counts as in flight for as long as it runs.
struct Held {
    body: Body,
    _permit: OwnedSemaphorePermit,
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
