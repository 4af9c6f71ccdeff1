//! The overhead benchmark end to end, with a fraction of a second of load
//! per level: it must start its network, get answers from both targets and
//! fill one row per level. Nothing here asserts a speed.

use std::time::Duration;

use agora_bench::overhead::{markdown, run_agora, run_external, start_stub, STUB_MODEL};
use agora_tasks::Shutdown;

const LOAD: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_overhead_run_fills_a_row_per_level() {
    let rows = run_agora(&[1, 3], LOAD, false).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.clients).collect::<Vec<_>>(), [1, 3]);
    for r in &rows {
        assert!(r.direct.requests > 0 && r.proxied.requests > 0, "{r:?}");
        assert_eq!((r.direct.errors, r.proxied.errors), (0, 0), "{r:?}");
        assert!(r.direct.p99_ms >= r.direct.p50_ms, "{r:?}");
    }
    let table = markdown("gateway", &rows);
    assert_eq!(table.lines().count(), 4, "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_proxy_is_measured_against_its_upstream() {
    let (trigger, shutdown) = Shutdown::manual();
    let (url, task) = start_stub("127.0.0.1:0".parse().unwrap(), shutdown)
        .await
        .unwrap();
    // The stub stands in for both the upstream and the proxy in front of it.
    let rows = run_external(STUB_MODEL, &url, &url, Some("sk-x".into()), &[2], LOAD)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].direct.requests > 0 && rows[0].proxied.requests > 0);
    trigger.trigger();
    task.await.unwrap().unwrap();
}
