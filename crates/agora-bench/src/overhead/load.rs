//! The load generator: `clients` concurrent clients, each with its own
//! keep-alive HTTP/1.1 connection (one `reqwest` client each, as an SDK
//! holds one), sending the same request back to back for a fixed time and
//! timing each from send to the last byte of the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_tasks::{fail, Context};
use tokio::sync::Barrier;

use crate::Result;

/// One HTTP endpoint under load: a POST of a fixed JSON body.
#[derive(Clone, Debug)]
pub struct Target {
    /// What the table calls it (`direct`, `gateway`, `proxy`).
    pub name: String,
    /// Full URL of the POST.
    pub url: String,
    /// The JSON body, already encoded.
    pub body: Vec<u8>,
    /// Sent as `Authorization: Bearer ...` when set.
    pub bearer: Option<String>,
}

/// What one concurrency level measured on one target.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Latency of every successful request.
    pub latencies: Vec<Duration>,
    /// Requests that failed (transport error or a non-2xx answer).
    pub errors: usize,
    /// The first failure, to show why.
    pub first_error: Option<String>,
    /// From the common start to the last client's stop.
    pub elapsed: Duration,
}

impl Sample {
    /// Successful requests per second over the run.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.latencies.len() as f64 / secs
        } else {
            0.0
        }
    }
}

/// The `q`-quantile (0..=1) of `values` by nearest rank on the sorted values;
/// `None` when there are none.
pub fn percentile(values: &[Duration], q: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One request, read to its end; `Err` says why it failed.
async fn send(http: &reqwest::Client, target: &Target) -> std::result::Result<(), String> {
    let mut request = http
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(target.body.clone());
    if let Some(key) = &target.bearer {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(format!(
            "{status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    Ok(())
}

/// Run `clients` clients against `target` for `duration` after each has
/// made one untimed warm-up request (which opens its connection).
pub async fn run(target: &Target, clients: usize, duration: Duration) -> Result<Sample> {
    let clients = clients.max(1);
    let start = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (target, start) = (target.clone(), start.clone());
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .context("building an HTTP client")?;
        tasks.push(tokio::spawn(async move {
            let warm = send(&http, &target).await;
            start.wait().await;
            let mut sample = Sample::default();
            if let Err(e) = warm {
                sample.errors += 1;
                sample.first_error = Some(format!("warm-up: {e}"));
                return sample;
            }
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match send(&http, &target).await {
                    Ok(()) => sample.latencies.push(sent.elapsed()),
                    Err(e) => {
                        sample.errors += 1;
                        sample.first_error.get_or_insert(e);
                    }
                }
            }
            sample
        }));
    }
    start.wait().await;
    let began = Instant::now();
    let mut total = Sample::default();
    for task in tasks {
        let sample = task.await?;
        total.latencies.extend(sample.latencies);
        total.errors += sample.errors;
        if total.first_error.is_none() {
            total.first_error = sample.first_error;
        }
    }
    total.elapsed = began.elapsed();
    if total.latencies.is_empty() {
        fail!(
            "no request to {} succeeded: {}",
            target.url,
            total.first_error.unwrap_or_default()
        );
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values = ms(&[5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&values, 0.9), Some(Duration::from_millis(9)));
        assert_eq!(percentile(&values, 0.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&ms(&[7]), 0.99), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn p99_of_a_hundred_is_the_ninety_ninth() {
        let values: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_millis(50)));
    }

    #[test]
    fn rate_counts_successes_over_the_elapsed_time() {
        let sample = Sample {
            latencies: ms(&[1; 50]),
            errors: 7,
            first_error: None,
            elapsed: Duration::from_millis(500),
        };
        assert!((sample.rate() - 100.0).abs() < 1e-9);
        assert_eq!(Sample::default().rate(), 0.0);
    }
}
