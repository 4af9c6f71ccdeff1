//! Errors in OpenAI's JSON shape: `{"error": {"message", "type", "param", "code"}}`
//! with the HTTP status real clients expect.

use agora_tasks::Refusal;
use agora_wire::openai::error_json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

/// An API error as the client sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI's `type`: `invalid_request_error`, `server_error`...
    pub kind: &'static str,
    /// Machine-readable `code`.
    pub code: &'static str,
    /// Request field at fault, if any.
    pub param: Option<String>,
    /// Human-readable explanation.
    pub message: String,
    /// Seconds after which a retry may succeed (sent as `retry-after`).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            param: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is unusable; `param` names the field.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_value",
            message,
        );
        e.param = Some(param.to_string());
        e
    }

    /// 401: no API key, or one the gateway did not issue.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            message,
        )
    }

    /// 400: the body is not JSON.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            message,
        )
    }

    /// 404: no such model.
    pub fn unknown_model(model: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("The model `{model}` does not exist on this network (see GET /v1/models)"),
        );
        e.param = Some("model".into());
        e
    }

    /// 404: no such route.
    pub fn unknown_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_url",
            format!("Unknown request URL: {path}"),
        )
    }

    /// 405: the route exists with another method.
    pub fn wrong_method() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            "Method not allowed",
        )
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        let msg = format!("Request body is larger than the limit of {limit} bytes");
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            msg,
        )
    }

    /// 503: nobody can serve the request right now.
    pub fn no_provider(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "no_provider",
            message,
        );
        e.retry_after = Some(1);
        e
    }

    /// 502: a provider accepted the job but failed it.
    pub fn provider_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "provider_failed",
            message,
        )
    }

    /// 503: the directory (chain) cannot be read.
    pub fn directory(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "directory_unavailable",
            message,
        );
        e.retry_after = Some(1);
        e
    }

    /// 503 (overloaded), 429 (too many from one client) or 504 (no
    /// response in time): a request the hardened server refused before or
    /// instead of routing it.
    pub fn refused(refusal: Refusal) -> Self {
        let mut e = Self::new(
            refusal.status(),
            refusal.kind(),
            refusal.code(),
            refusal.to_string(),
        );
        if refusal.retryable() {
            e.retry_after = Some(1);
        }
        e
    }

    /// [`ApiError::refused`] as a response, for [`agora_tasks::ServeLimits::refuse`].
    pub fn refusal(refusal: Refusal) -> Response {
        Self::refused(refusal).into_response()
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        error_json(&self.message, self.kind, self.param.as_deref(), self.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}
