//! The data node's HTTP API from the other side: the buyer runs its job and
//! reads the result; a validator fetches a job's inputs and checks every
//! byte against the ids the chain records before re-running it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agora_blobs::Collection;
use agora_types::data::output_hash;
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

    /// What a buyer checks of an answer before trusting it: the receipt is
    /// this host's, signed, for this job, and covers exactly the output sent.
    /// A receipt that passes is the evidence `ReportDataEquivocation` needs
    /// should the host settle a different one.
    fn check_answer(&self, job: &Hash32, answer: JobResponse) -> Result<JobResponse, DataError> {
        let signed = &answer.receipt;
        if signed.host != self.host || signed.verify().is_err() {
            return Err(DataError::Unverified(
                "the receipt is not signed by the job's host".into(),
            ));
        }
        if signed.receipt.job != *job || signed.receipt.status != answer.status {
            return Err(DataError::Unverified(
                "the receipt is for another job or outcome".into(),
            ));
        }
        let output = base64::engine::general_purpose::STANDARD
            .decode(&answer.output_base64)
            .map_err(|e| DataError::Unverified(format!("output_base64: {e}")))?;
        if output_hash(&output) != signed.receipt.output_hash {
            return Err(DataError::Unverified(
                "the output does not hash to the receipt's output hash".into(),
            ));
        }
        Ok(answer)
    }

    /// Run job `job` (opened on chain by `key`) with `params`, sending the
    /// module if given; the answer is checked against its receipt.
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
        .and_then(|answer| self.check_answer(job, answer))
    }

    /// Read the kept result of `key`'s job, checked against its receipt.
    pub async fn result(&self, key: &Keypair, job: &Hash32) -> Result<JobResponse, DataError> {
        Self::read(self.request(
            reqwest::Method::GET,
            &format!("/v1/data/jobs/{job}"),
            key,
            job,
            Purpose::Result,
        ))
        .await
        .and_then(|answer| self.check_answer(job, answer))
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

#[cfg(test)]
mod tests {
    use agora_types::data::params_hash;
    use agora_types::{DataReceipt, DataRunStatus};

    use super::*;

    fn answer(host: &Keypair, job: Hash32, output: &[u8]) -> JobResponse {
        let receipt = DataReceipt {
            job,
            dataset: Hash32([2; 32]),
            algorithm: Hash32([3; 32]),
            params_hash: params_hash(b""),
            status: DataRunStatus::Success,
            output_hash: output_hash(b"{\"rows\":3}"),
            fuel_used: 10,
            max_fuel: 100,
            charge: 5,
        }
        .sign(host);
        JobResponse {
            job,
            status: DataRunStatus::Success,
            output: String::from_utf8_lossy(output).into_owned(),
            output_base64: base64::engine::general_purpose::STANDARD.encode(output),
            stderr: String::new(),
            receipt,
        }
    }

    #[test]
    fn a_buyer_accepts_only_an_output_its_hosts_receipt_covers() {
        let (host, other) = (Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32]));
        let job = Hash32([9; 32]);
        let client = DataClient::new("http://127.0.0.1:1", host.account());
        let good = answer(&host, job, b"{\"rows\":3}");
        assert!(client.check_answer(&job, good.clone()).is_ok());
        let refused = [
            ("another output", answer(&host, job, b"{\"rows\":4}")),
            ("another host's key", answer(&other, job, b"{\"rows\":3}")),
            (
                "another job",
                answer(&host, Hash32([8; 32]), b"{\"rows\":3}"),
            ),
            ("another status", {
                let mut a = good.clone();
                a.status = DataRunStatus::Trap;
                a
            }),
            ("a forged receipt", {
                let mut a = good.clone();
                a.receipt.receipt.fuel_used = 1;
                a
            }),
        ];
        for (what, bad) in refused {
            assert!(
                matches!(
                    client.check_answer(&job, bad),
                    Err(DataError::Unverified(_))
                ),
                "{what} accepted"
            );
        }
    }
}
