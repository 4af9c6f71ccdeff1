//! The data node's HTTP API from the other side: the buyer runs its job and
//! reads the result; a validator fetches a job's inputs and checks every
//! byte against the ids the chain records before re-running it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agora_blobs::Collection;
use agora_types::{AccountId, Hash32, Keypair, SignedDataReceipt};
use base64::Engine;
use serde::de::DeserializeOwned;

use crate::access::{now_ms, AccessGrant, Purpose};
use crate::http::AuditResponse;
use crate::{DataError, JobResponse, RunRequest};

/// A client of one data node.
#[derive(Clone, Debug)]
pub struct DataClient {
    base: String,
    host: AccountId,
    http: reqwest::Client,
}

/// A job's inputs, fetched and verified, ready to re-run.
#[derive(Clone, Debug)]
pub struct AuditInputs {
    /// The parameters.
    pub params: Vec<u8>,
    /// The module.
    pub module: Vec<u8>,
    /// The folder the dataset's files were written to.
    pub dir: PathBuf,
    /// The receipt the host returned with them.
    pub receipt: SignedDataReceipt,
}

impl DataClient {
    /// A client of the node at `base_url` run by `host`.
    pub fn new(base_url: &str, host: AccountId) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap_or_default();
        DataClient {
            base: base_url.trim_end_matches('/').to_string(),
            host,
            http,
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &Keypair,
        job: &Hash32,
        purpose: Purpose,
    ) -> reqwest::RequestBuilder {
        let grant = AccessGrant::sign(key, &self.host, job, purpose, now_ms());
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in grant.headers() {
            req = req.header(name, value);
        }
        req
    }

    async fn read<T: DeserializeOwned>(req: reqwest::RequestBuilder) -> Result<T, DataError> {
        let resp = req
            .send()
            .await
            .map_err(|e| DataError::Remote(format!("data node unreachable: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| DataError::Remote(format!("reading the data node's answer: {e}")))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(DataError::Remote(format!(
                "data node answered {status}: {message}"
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| DataError::Remote(format!("malformed answer: {e}")))
    }

    /// Stream one file to `out`, hashing as it comes; an error if it is not
    /// `size` bytes hashing to `id` (never more than `size` bytes are written).
    async fn download(
        req: reqwest::RequestBuilder,
        out: &Path,
        size: u64,
        id: &Hash32,
    ) -> Result<(), DataError> {
        use std::io::Write;
        let mut resp = req
            .send()
            .await
            .map_err(|e| DataError::Remote(format!("data node unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(DataError::Remote(format!(
                "data node answered {}",
                resp.status()
            )));
        }
        let mut sink = std::io::BufWriter::new(std::fs::File::create(out)?);
        let mut hasher = blake3::Hasher::new();
        let mut got = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| DataError::Remote(format!("reading a dataset file: {e}")))?
        {
            got += chunk.len() as u64;
            if got > size {
                return Err(DataError::Unverified(
                    "longer than the manifest says".into(),
                ));
            }
            hasher.update(&chunk);
            sink.write_all(&chunk)?;
        }
        sink.flush()?;
        if got != size || Hash32(*hasher.finalize().as_bytes()) != *id {
            return Err(DataError::Unverified("does not match its id".into()));
        }
        Ok(())
    }

    /// Run job `job` (opened on chain by `key`) with `params`, sending the
    /// module if given.
    pub async fn run(
        &self,
        key: &Keypair,
        job: &Hash32,
        params: &str,
        module: Option<&[u8]>,
    ) -> Result<JobResponse, DataError> {
        let body = RunRequest {
            job: *job,
            params: params.to_string(),
            module_base64: module.map(|m| base64::engine::general_purpose::STANDARD.encode(m)),
        };
        Self::read(
            self.request(
                reqwest::Method::POST,
                "/v1/data/jobs",
                key,
                job,
                Purpose::Run,
            )
            .json(&body),
        )
        .await
    }

    /// Read the kept result of `key`'s job.
    pub async fn result(&self, key: &Keypair, job: &Hash32) -> Result<JobResponse, DataError> {
        Self::read(self.request(
            reqwest::Method::GET,
            &format!("/v1/data/jobs/{job}"),
            key,
            job,
            Purpose::Result,
        ))
        .await
    }

    /// As a drawn validator: fetch job `job`'s inputs into `dest`, checking
    /// the manifest against `dataset` and every file against the manifest.
    pub async fn audit_inputs(
        &self,
        key: &Keypair,
        job: &Hash32,
        dataset: &Hash32,
        dest: &Path,
    ) -> Result<AuditInputs, DataError> {
        let path = format!("/v1/data/audit/{job}");
        let answer: AuditResponse =
            Self::read(self.request(reqwest::Method::GET, &path, key, job, Purpose::Audit)).await?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |field: &str, text: &str| {
            b64.decode(text)
                .map_err(|e| DataError::Unverified(format!("{field}: {e}")))
        };
        let params = decode("params_base64", &answer.params_base64)?;
        let module = decode("module_base64", &answer.module_base64)?;
        // Parsed again from bytes: checks paths are safe and recomputes the id.
        let bytes = serde_json::to_vec(&answer.manifest)
            .map_err(|e| DataError::Unverified(e.to_string()))?;
        let manifest = Collection::parse(&bytes)
            .map_err(|e| DataError::Unverified(format!("manifest: {e}")))?
            .ok_or_else(|| DataError::Unverified("the manifest is not a collection".into()))?;
        if Hash32(*blake3::hash(&manifest.to_bytes()).as_bytes()) != *dataset {
            return Err(DataError::Unverified(
                "the manifest is not the dataset's".into(),
            ));
        }
        for (n, file) in manifest.files.iter().enumerate() {
            let req = self.request(
                reqwest::Method::GET,
                &format!("{path}/files/{n}"),
                key,
                job,
                Purpose::Audit,
            );
            let out = dest.join(&file.path);
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if let Err(e) = Self::download(req, &out, file.size, &file.id).await {
                let _ = std::fs::remove_file(&out);
                return Err(match e {
                    DataError::Unverified(why) => {
                        DataError::Unverified(format!("{}: {why}", file.path))
                    }
                    e => e,
                });
            }
        }
        Ok(AuditInputs {
            params,
            module,
            dir: dest.to_path_buf(),
            receipt: answer.receipt,
        })
    }
}
