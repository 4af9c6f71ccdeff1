//! The data node's HTTP API. Every route acts on one job and needs a
//! signed grant ([`crate::AccessGrant`]) in its headers: the buyer's to run
//! and read, a drawn validator's to read the inputs. Errors use the
//! OpenAI-style JSON shape `{"error": {"message", "type", "code"}}`.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};

use agora_blobs::Collection;
use agora_types::{Hash32, SignedDataReceipt};

use crate::access::AccessGrant;
use crate::node::JobRecord;
use crate::{DataError, DataNode};

/// Largest request body: a module of up to 16 MiB, base64-encoded, plus parameters.
const MAX_BODY: usize = 24 << 20;

/// `POST /v1/data/jobs`: run a job opened on chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRequest {
    /// The job id (hex).
    pub job: Hash32,
    /// The parameters, as the algorithm reads them on stdin.
    pub params: String,
    /// The module, base64, unless the node already holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_base64: Option<String>,
}

/// A job's result: the output and the signed receipt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobResponse {
    /// The job id.
    pub job: Hash32,
    /// How the run ended (as in the receipt).
    pub status: agora_types::DataRunStatus,
    /// The output as text (invalid UTF-8 replaced).
    pub output: String,
    /// The exact output bytes, base64: what the receipt's output hash covers.
    pub output_base64: String,
    /// The algorithm's diagnostics, as text.
    pub stderr: String,
    /// The host's signed receipt.
    pub receipt: SignedDataReceipt,
}

impl From<JobRecord> for JobResponse {
    fn from(r: JobRecord) -> Self {
        JobResponse {
            job: r.receipt.receipt.job,
            status: r.receipt.receipt.status,
            output: String::from_utf8_lossy(&r.output).into_owned(),
            output_base64: base64::engine::general_purpose::STANDARD.encode(&r.output),
            stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
            receipt: r.receipt,
        }
    }
}

/// What a drawn validator gets to re-run a job (files come one by one).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AuditResponse {
    pub(crate) params_base64: String,
    pub(crate) module_base64: String,
    pub(crate) manifest: Collection,
    pub(crate) receipt: SignedDataReceipt,
}

/// The routes, serving `node`.
pub fn router(node: DataNode) -> Router {
    Router::new()
        .route("/v1/data/jobs", post(run))
        .route("/v1/data/jobs/{job}", get(result))
        .route("/v1/data/audit/{job}", get(audit))
        .route("/v1/data/audit/{job}/files/{n}", get(audit_file))
        .route("/v1/data/datasets", get(datasets))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(node)
}

/// An error in the API's JSON shape.
struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = if self.0.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        let body = serde_json::json!({"error": {"message": self.2, "type": kind, "code": self.1}});
        (self.0, Json(body)).into_response()
    }
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        use DataError as E;
        let (status, code) = match &e {
            E::UnknownJob(_) | E::NoResult(_) => (StatusCode::NOT_FOUND, "job_not_found"),
            E::DatasetNotHere(_) => (StatusCode::NOT_FOUND, "dataset_not_found"),
            E::NotMyJob(_) => (StatusCode::BAD_REQUEST, "wrong_host"),
            E::ParamsMismatch => (StatusCode::BAD_REQUEST, "params_mismatch"),
            E::Module(..) => (StatusCode::BAD_REQUEST, "module_mismatch"),
            E::Busy(_) => (StatusCode::CONFLICT, "job_running"),
            E::Denied(_) => (StatusCode::FORBIDDEN, "access_denied"),
            E::Sandbox(_) => (StatusCode::UNPROCESSABLE_ENTITY, "module_refused"),
            E::Unverified(_) => (StatusCode::BAD_REQUEST, "unverified"),
            E::Chain(_) | E::Remote(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
            E::Blobs(_) | E::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"),
        };
        ApiError(status, code, e.to_string())
    }
}

fn grant(headers: &HeaderMap) -> Result<AccessGrant, ApiError> {
    AccessGrant::from_headers(headers)
        .map_err(|e| ApiError(StatusCode::UNAUTHORIZED, "missing_grant", e))
}

fn job_id(text: &str) -> Result<Hash32, ApiError> {
    text.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("{text:?} is not a job id"),
        )
    })
}

async fn run(
    State(node): State<DataNode>,
    headers: HeaderMap,
    body: Result<Json<RunRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<JobResponse>, ApiError> {
    let grant = grant(&headers)?;
    let Json(req) = body.map_err(|e| ApiError(e.status(), "malformed", e.body_text()))?;
    let module = req
        .module_base64
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
        .transpose()
        .map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("module_base64: {e}"),
            )
        })?;
    let record = node
        .run(req.job, req.params.into_bytes(), module, &grant)
        .await?;
    Ok(Json(record.into()))
}

async fn result(
    State(node): State<DataNode>,
    headers: HeaderMap,
    Path(job): Path<String>,
) -> Result<Json<JobResponse>, ApiError> {
    let grant = grant(&headers)?;
    Ok(Json(node.result(&job_id(&job)?, &grant)?.into()))
}

async fn audit(
    State(node): State<DataNode>,
    headers: HeaderMap,
    Path(job): Path<String>,
) -> Result<Json<AuditResponse>, ApiError> {
    let grant = grant(&headers)?;
    let b = node.audit_bundle(&job_id(&job)?, &grant).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Json(AuditResponse {
        params_base64: b64.encode(&b.params),
        module_base64: b64.encode(&b.module),
        manifest: b.manifest,
        receipt: b.receipt,
    }))
}

async fn audit_file(
    State(node): State<DataNode>,
    headers: HeaderMap,
    Path((job, n)): Path<(String, usize)>,
) -> Result<Response, ApiError> {
    let grant = grant(&headers)?;
    let path = node.audit_file(&job_id(&job)?, n, &grant).await?;
    let file = tokio::fs::File::open(path).await.map_err(DataError::from)?;
    // Streamed in 1 MiB pieces: a dataset file is never held whole in memory.
    let chunks = futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0; 1 << 20];
        match tokio::io::AsyncReadExt::read(&mut file, &mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err::<axum::body::Bytes, _>(e), None)),
        }
    });
    Ok(axum::body::Body::from_stream(chunks).into_response())
}

async fn datasets(State(node): State<DataNode>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "host": node.account(), "datasets": node.datasets() }))
}
