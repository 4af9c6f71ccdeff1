//! The RPC's extractors for path segments and query strings: like axum's
//! `Path` and `Query`, but a request they cannot read is refused in the
//! RPC's JSON error shape, not with axum's plain-text rejection.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::rpc::{bad_request, ApiError};

/// A path segment, refused in the RPC's error shape when it cannot be read
/// (bad percent-encoding, not UTF-8).
pub(crate) struct Segment(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(segment)) => Ok(Segment(segment)),
            Err(e) => Err(bad_request("malformed", e.body_text())),
        }
    }
}

/// A query string, refused in the RPC's error shape when it does not parse.
pub(crate) struct RpcQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for RpcQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(params)) => Ok(RpcQuery(params)),
            Err(e) => Err(bad_request("malformed", e.body_text())),
        }
    }
}
