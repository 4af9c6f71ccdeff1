//! The overhead table: per concurrency level, the direct and the proxied
//! target's latency percentiles and rate, and what the proxy adds.

use serde::Serialize;

use super::load::{percentile, Sample};

/// Latency and rate of one target at one concurrency level.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Successful requests timed.
    pub requests: usize,
    /// Failed requests.
    pub errors: usize,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Successful requests per second.
    pub rps: f64,
}

impl Stats {
    /// Summarize a load run.
    pub fn of(sample: &Sample) -> Self {
        let ms = |q| percentile(&sample.latencies, q).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        Stats {
            requests: sample.latencies.len(),
            errors: sample.errors,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            rps: sample.rate(),
        }
    }
}

/// One concurrency level: the upstream called directly, then through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Concurrent clients.
    pub clients: usize,
    /// The upstream called directly.
    pub direct: Stats,
    /// The same upstream through the gateway (or the external proxy).
    pub proxied: Stats,
}

impl Row {
    /// Added median latency: proxied p50 minus direct p50, in milliseconds.
    pub fn added_p50_ms(&self) -> f64 {
        self.proxied.p50_ms - self.direct.p50_ms
    }

    /// Added tail latency: proxied p99 minus direct p99, in milliseconds.
    pub fn added_p99_ms(&self) -> f64 {
        self.proxied.p99_ms - self.direct.p99_ms
    }
}

/// The table as Markdown; `proxy` names the proxied column group.
pub fn markdown(proxy: &str, rows: &[Row]) -> String {
    let mut out = format!(
        "| clients | direct p50 (ms) | direct p99 (ms) | direct req/s | {proxy} p50 (ms) | {proxy} p99 (ms) | {proxy} req/s | added p50 (ms) | added p99 (ms) | errors |\n"
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {} |\n",
            r.clients,
            r.direct.p50_ms,
            r.direct.p99_ms,
            r.direct.rps,
            r.proxied.p50_ms,
            r.proxied.p99_ms,
            r.proxied.rps,
            r.added_p50_ms(),
            r.added_p99_ms(),
            r.direct.errors + r.proxied.errors,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stats(p50: f64, p99: f64, rps: f64) -> Stats {
        Stats {
            requests: 100,
            errors: 0,
            p50_ms: p50,
            p99_ms: p99,
            rps,
        }
    }

    #[test]
    fn added_latency_is_the_difference_of_percentiles() {
        let row = Row {
            clients: 16,
            direct: stats(1.0, 3.0, 5000.0),
            proxied: stats(1.75, 7.5, 3000.0),
        };
        assert!((row.added_p50_ms() - 0.75).abs() < 1e-9);
        assert!((row.added_p99_ms() - 4.5).abs() < 1e-9);
    }

    #[test]
    fn the_table_has_a_header_and_one_row_per_level() {
        let rows = [1, 16, 256].map(|clients| Row {
            clients,
            direct: stats(1.0, 2.0, 1000.0),
            proxied: stats(1.5, 2.5, 900.0),
        });
        let table = markdown("gateway", &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[0].contains("| gateway p50 (ms) |"), "{}", lines[0]);
        assert_eq!(
            lines[3],
            "| 16 | 1.00 | 2.00 | 1000 | 1.50 | 2.50 | 900 | 0.50 | 0.50 | 0 |"
        );
        assert!(lines[4].starts_with("| 256 |"));
        assert!(lines.iter().all(|l| l.matches('|').count() == 11));
    }

    #[test]
    fn stats_summarize_a_sample() {
        let sample = Sample {
            latencies: (1..=100).map(Duration::from_millis).collect(),
            errors: 2,
            first_error: None,
            elapsed: Duration::from_secs(2),
        };
        let s = Stats::of(&sample);
        assert_eq!((s.requests, s.errors), (100, 2));
        assert!((s.p50_ms - 50.0).abs() < 1e-9 && (s.p99_ms - 99.0).abs() < 1e-9);
        assert!((s.rps - 50.0).abs() < 1e-9);
    }
}
