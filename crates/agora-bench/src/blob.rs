//! `agora bench blob`: the blob store against plain tools on the same file
//! in the same run. Import (hashing into an id and outboard) is timed
//! against `b3sum`; a verified fetch from two local peers against a plain,
//! unverified HTTP range download of the same bytes from two servers with
//! the same pieces and requests in flight per peer; and the store's
//! overhead (outboard and index) against the data's size.

use std::collections::VecDeque;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_blobs::{BlobStore, FetchConfig, HttpPeer, RangeSource};
use agora_tasks::{fail, Context, Failure};
use agora_types::Hash32;
use serde_json::json;

use crate::{BlobArgs, Result};

/// The bench's figures.
struct Figures {
    size: u64,
    b3sum: Duration,
    import_in_place: Duration,
    import_copy: Duration,
    overhead_bytes: u64,
    plain: Duration,
    plain_synced: Duration,
    verified: Duration,
    verified_from: Vec<(String, u64)>,
}

/// Run the bench and print its table (or JSON).
pub async fn run(args: BlobArgs) -> Result<()> {
    let scratch = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .context("making the bench's scratch directory")?;
    let size = args.size_mib << 20;
    let data = scratch.path().join("data");
    write_data(&data, size)?;
    eprintln!("wrote {size} bytes to {}", data.display());
    let runs = args.runs.max(1);

    // The first run also warms the page cache for every step after it.
    let want = run_b3sum(&args.b3sum, &data)?;
    let stores = scratch.path().join("stores");
    let store_dir = stores.join("served");
    let served = Arc::new(BlobStore::open(&store_dir).context("opening a store")?);
    served
        .import_in_place(&data)
        .context("importing in place")?;
    let overhead_bytes = dir_bytes(&store_dir)?;
    let peers = [
        serve(served.clone(), &data).await?,
        serve(served, &data).await?,
    ];
    let http = reqwest::Client::new();
    let sources: Vec<HttpPeer> = peers
        .iter()
        .map(|p| HttpPeer::new(p, http.clone()))
        .collect();
    let sources: Vec<&dyn RangeSource> = sources.iter().map(|p| p as &dyn RangeSource).collect();

    // The steps take turns, run after run, so that each sees the machine
    // as the others do; every step starts with no dirty pages to flush.
    let mut times: [Vec<Duration>; 6] = Default::default();
    let mut verified_from = Vec::new();
    let fresh = |n: usize| -> Result<(BlobStore, std::path::PathBuf)> {
        let dir = stores.join(format!("s{n}"));
        let store = BlobStore::open(&dir).context("opening a store")?;
        settle()?;
        Ok((store, dir))
    };
    for run in 0..runs {
        settle()?;
        let started = Instant::now();
        check_id(run_b3sum(&args.b3sum, &data)?, want)?;
        times[0].push(started.elapsed());

        for (step, in_place) in [(1, true), (2, false)] {
            let (store, dir) = fresh(run * 3 + step - 1)?;
            let started = Instant::now();
            let info = if in_place {
                store.import_in_place(&data)
            } else {
                store.import_file(&data)
            }
            .context("importing")?;
            times[step].push(started.elapsed());
            check_id(info.id, want)?;
            drop(store);
            std::fs::remove_dir_all(dir)?;
        }

        let out = scratch.path().join("plain");
        settle()?;
        let (plain, synced) = plain_download(&peers, &out, size).await?;
        times[3].push(plain);
        times[5].push(synced);
        std::fs::remove_file(out)?;

        let (store, dir) = fresh(run * 3 + 2)?;
        let started = Instant::now();
        let fetched = agora_blobs::fetch(
            &store,
            want,
            size,
            &sources,
            &FetchConfig::default(),
            &|_, _| {},
        )
        .await
        .context("the verified fetch")?;
        times[4].push(started.elapsed());
        check_id(fetched.info.id, want)?;
        verified_from = fetched.from;
        drop(store);
        std::fs::remove_dir_all(dir)?;
    }
    let [b3sum, import_in_place, import_copy, plain, verified, plain_synced] = times.map(middle);
    let figures = Figures {
        size,
        b3sum,
        import_in_place,
        import_copy,
        overhead_bytes,
        plain,
        plain_synced,
        verified,
        verified_from,
    };
    print(&figures, args.json);
    Ok(())
}

/// Fill `path` with `size` pseudo-random bytes (BLAKE3's output stream of a
/// random key, so no two runs share a file).
fn write_data(path: &Path, size: u64) -> Result<()> {
    let seed: [u8; 32] = rand::random();
    let mut reader = blake3::Hasher::new_keyed(&seed).finalize_xof();
    let file = std::fs::File::create(path).context("creating the data file")?;
    let mut buf = vec![0u8; 4 << 20];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        reader.fill(&mut buf[..n]);
        file.write_all_at(&buf[..n], at)
            .context("writing the data file")?;
        at += n as u64;
    }
    Ok(())
}

fn check_id(got: Hash32, want: Hash32) -> Result<()> {
    if got != want {
        fail!("the store named the file {got}, not {want}");
    }
    Ok(())
}

/// `b3sum --no-names FILE`'s hash.
fn run_b3sum(b3sum: &Path, file: &Path) -> Result<Hash32> {
    let out = std::process::Command::new(b3sum)
        .arg("--no-names")
        .arg(file)
        .output()
        .with_context(|| {
            format!(
                "running {} (install it with `cargo install b3sum --locked`, or pass --b3sum PATH)",
                b3sum.display()
            )
        })?;
    if !out.status.success() {
        fail!("b3sum failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .trim()
        .parse()
        .with_context(|| format!("b3sum printed {text:?}"))?;
    Ok(id)
}

/// Write every dirty page out (`sync`), so that no step pays for flushing
/// what an earlier one wrote.
fn settle() -> Result<()> {
    let status = std::process::Command::new("sync")
        .status()
        .context("running sync")?;
    if !status.success() {
        fail!("sync failed: {status}");
    }
    Ok(())
}

/// The median of `times`.
fn middle(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// A server on a free loopback port with the store's blob routes and, at
/// `/raw`, the plain bytes of `data` (tower-http's file service, which
/// answers HTTP `Range` requests), unverified.
async fn serve(store: Arc<BlobStore>, data: &Path) -> Result<String> {
    let raw = tower_http::services::ServeFile::new(data);
    let app = agora_blobs::serve::router(store).route_service("/raw", raw);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// Download `size` bytes from the peers' `/raw` into `out` with the
/// verified fetch's pieces and scheduling (one queue, as many requests in
/// flight per peer), writing each piece where it goes; returns the time taken,
/// and the time until the file was also synced to disk (as a verified
/// fetch syncs what it stores).
async fn plain_download(peers: &[String], out: &Path, size: u64) -> Result<(Duration, Duration)> {
    let FetchConfig {
        piece_bytes: piece,
        per_peer,
        ..
    } = FetchConfig::default();
    let file = std::fs::File::create(out).context("creating the download")?;
    let queue: Mutex<VecDeque<(u64, u64)>> = Mutex::new(
        (0..size.div_ceil(piece))
            .map(|i| (i * piece, ((i + 1) * piece).min(size)))
            .collect(),
    );
    let http = reqwest::Client::new();
    let started = Instant::now();
    let lanes = peers
        .iter()
        .flat_map(|p| std::iter::repeat_n(p, per_peer.max(1)));
    let workers = lanes.map(|peer| {
        let (queue, file, http) = (&queue, &file, &http);
        async move {
            loop {
                let Some((start, end)) =
                    queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                else {
                    return Ok::<_, Failure>(());
                };
                let resp = http
                    .get(format!("{peer}/raw"))
                    .header(reqwest::header::RANGE, format!("bytes={start}-{}", end - 1))
                    .send()
                    .await
                    .context("plain download")?;
                let bytes = resp
                    .error_for_status()
                    .context("plain download")?
                    .bytes()
                    .await
                    .context("plain download")?;
                if bytes.len() as u64 != end - start {
                    fail!(
                        "the plain server sent {} bytes for {start}..{end}",
                        bytes.len()
                    );
                }
                file.write_all_at(&bytes, start)
                    .context("writing the download")?;
            }
        }
    });
    for result in futures::future::join_all(workers).await {
        result?;
    }
    let downloaded = started.elapsed();
    file.sync_all().context("syncing the download")?;
    Ok((downloaded, started.elapsed()))
}

fn rate(size: u64, d: Duration) -> f64 {
    size as f64 / (1u64 << 20) as f64 / d.as_secs_f64()
}

fn print(f: &Figures, as_json: bool) {
    let import_ratio = f.b3sum.as_secs_f64() / f.import_in_place.as_secs_f64();
    let fetch_ratio = f.plain.as_secs_f64() / f.verified.as_secs_f64();
    let durable_ratio = f.plain_synced.as_secs_f64() / f.verified.as_secs_f64();
    let overhead = f.overhead_bytes as f64 / f.size as f64 * 100.0;
    if as_json {
        let v = json!({
            "size_bytes": f.size,
            "b3sum_mib_s": rate(f.size, f.b3sum),
            "import_in_place_mib_s": rate(f.size, f.import_in_place),
            "import_copy_mib_s": rate(f.size, f.import_copy),
            "import_vs_b3sum": import_ratio,
            "plain_fetch_mib_s": rate(f.size, f.plain),
            "verified_fetch_mib_s": rate(f.size, f.verified),
            "verified_vs_plain": fetch_ratio,
            "plain_synced_fetch_mib_s": rate(f.size, f.plain_synced),
            "verified_vs_plain_synced": durable_ratio,
            "verified_from": f.verified_from,
            "overhead_bytes": f.overhead_bytes,
            "overhead_percent": overhead,
        });
        println!("{v}");
        return;
    }
    let mib = f.size >> 20;
    println!("| step ({mib} MiB) | time (ms) | MiB/s | vs baseline | target |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, d: Duration, vs: &str, target: &str| {
        println!(
            "| {name} | {:.0} | {:.0} | {vs} | {target} |",
            d.as_secs_f64() * 1e3,
            rate(f.size, d)
        );
    };
    row("b3sum (baseline)", f.b3sum, "1.00", "");
    row(
        "import in place (hash + outboard)",
        f.import_in_place,
        &format!("{import_ratio:.2}"),
        "≥ 0.80",
    );
    let copy_ratio = f.b3sum.as_secs_f64() / f.import_copy.as_secs_f64();
    row(
        "import with copy",
        f.import_copy,
        &format!("{copy_ratio:.2}"),
        "",
    );
    row("plain HTTP ranges, 2 peers (baseline)", f.plain, "1.00", "");
    let synced_ratio = f.plain.as_secs_f64() / f.plain_synced.as_secs_f64();
    row(
        "plain HTTP ranges, then fsync",
        f.plain_synced,
        &format!("{synced_ratio:.2}"),
        "",
    );
    row(
        "verified fetch, 2 peers (stored durably)",
        f.verified,
        &format!("{fetch_ratio:.2} ({durable_ratio:.2} vs fsynced)"),
        "≥ 0.80",
    );
    let from: Vec<String> = f
        .verified_from
        .iter()
        .map(|(p, n)| format!("{p}: {} MiB", n >> 20))
        .collect();
    println!();
    println!("verified fetch served by {}", from.join(", "));
    println!(
        "store overhead (outboard + index): {} bytes, {overhead:.3}% of the data (target ≤ 1%)",
        f.overhead_bytes
    );
}
