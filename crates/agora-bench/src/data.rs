//! `agora bench data`: the compute-to-data sandbox. Start-up per job with
//! the module compiled once; the CSV statistics example over a generated
//! CSV of `--size-mib` against the same C code compiled natively (with
//! `--cc -O2`) in the same run, outputs compared byte for byte; and the
//! re-run check: the same job on a sandbox compiled for baseline CPU
//! features gives the same output hash and fuel.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agora_sandbox::{example, CpuFeatures, Limits, RunStatus, Sandbox};
use agora_tasks::{Context, Failure};
use serde_json::json;

use crate::{DataArgs, Result};

/// The C sources of the example, to build natively.
const CSV_STATS_C: &str = include_str!("../../agora-sandbox/algorithms/csv_stats.c");
const COMMON_H: &str = include_str!("../../agora-sandbox/algorithms/common.h");

/// Write a CSV of about `bytes` (four numeric columns and a text one).
fn write_csv(path: &Path, bytes: u64) -> Result<u64> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).context("creating the CSV")?);
    let mut written = 0u64;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let header = "id,price,quantity,ratio,label\n";
    out.write_all(header.as_bytes())
        .context("writing the CSV")?;
    written += header.len() as u64;
    let mut row = 0u64;
    while written < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let line = format!(
            "{row},{}.{:02},{},{:.6},item{}\n",
            state % 10_000,
            (state >> 20) % 100,
            (state >> 32) % 500,
            (state >> 40) as f64 / (1u64 << 24) as f64,
            state % 97
        );
        out.write_all(line.as_bytes()).context("writing the CSV")?;
        written += line.len() as u64;
        row += 1;
    }
    out.flush().context("writing the CSV")?;
    Ok(written)
}

/// A failure with a message.
fn fail(message: impl std::fmt::Display) -> Failure {
    Failure::msg(message.to_string())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Build the example natively with `cc` (from `sources`, or the shipped
/// sources); the binary's path.
fn build_native(cc: &Path, dir: &Path, sources: Option<&Path>) -> Result<std::path::PathBuf> {
    match sources {
        Some(src) => {
            for name in ["common.h", "csv_stats.c"] {
                std::fs::copy(src.join(name), dir.join(name))
                    .with_context(|| format!("copying {}", src.join(name).display()))?;
            }
        }
        None => {
            std::fs::write(dir.join("common.h"), COMMON_H).context("writing common.h")?;
            std::fs::write(dir.join("csv_stats.c"), CSV_STATS_C).context("writing csv_stats.c")?;
        }
    }
    let bin = dir.join("csv_stats_native");
    let status = Command::new(cc)
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(dir.join("csv_stats.c"))
        .arg("-lm")
        .status()
        .with_context(|| format!("running {}", cc.display()))?;
    if !status.success() {
        return Err(fail(format!("{} failed to build csv_stats.c", cc.display())).into());
    }
    Ok(bin)
}

/// One native run over `data_dir`: its output and time.
fn run_native(bin: &Path, data_dir: &Path) -> Result<(Vec<u8>, Duration)> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running the native build")?;
    drop(child.stdin.take());
    let out = child
        .wait_with_output()
        .context("running the native build")?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(fail(format!("the native build exited with {}", out.status)).into());
    }
    Ok((out.stdout, took))
}

/// Run the bench and print its table (or JSON).
pub async fn run(args: DataArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(args))
        .await
        .map_err(|e| fail(format!("the bench panicked: {e}")))?
}

fn run_blocking(args: DataArgs) -> Result<()> {
    let scratch = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .context("making the bench's scratch directory")?;
    let runs = args.runs.max(1);
    let custom = match &args.algorithms {
        Some(dir) => Some(
            std::fs::read(dir.join("wasm").join("csv_stats.wasm"))
                .with_context(|| format!("reading {}/wasm/csv_stats.wasm", dir.display()))?,
        ),
        None => None,
    };
    let wasm = custom
        .as_deref()
        .unwrap_or(example("csv_stats").expect("csv_stats ships").wasm);
    let sandbox = Sandbox::new().map_err(|e| fail(e.to_string()))?;
    let compile_start = Instant::now();
    let algorithm = sandbox.load(wasm).map_err(|e| fail(e.to_string()))?;
    let compile = compile_start.elapsed();

    // Start-up: whole jobs over a one-row dataset, module already compiled.
    let tiny = scratch.path().join("tiny");
    std::fs::create_dir_all(&tiny).context("making the tiny dataset")?;
    std::fs::write(tiny.join("data.csv"), "a,b\n1,2\n").context("writing the tiny dataset")?;
    let limits = Limits::default();
    let seed = [0; 32];
    let mut startup = Vec::with_capacity(args.jobs);
    for _ in 0..args.jobs.max(1) {
        let start = Instant::now();
        let out = sandbox
            .run(&algorithm, &tiny, b"", &seed, &limits)
            .map_err(|e| fail(e.to_string()))?;
        startup.push(start.elapsed());
        if out.status != RunStatus::Success {
            return Err(fail(format!("the tiny job ended {:?}", out.status)).into());
        }
    }
    let startup_median = median(startup.clone());
    let startup_mean = startup.iter().sum::<Duration>() / startup.len() as u32;

    // The big job, in the sandbox and natively.
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).context("making the dataset folder")?;
    let size = write_csv(&data.join("data.csv"), args.size_mib << 20)?;
    eprintln!("wrote a {size}-byte CSV");
    let native = build_native(&args.cc, scratch.path(), args.algorithms.as_deref())?;
    let mut wasm_times = Vec::new();
    let mut native_times = Vec::new();
    let mut wasm_out = None;
    let mut native_out = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = sandbox
            .run(&algorithm, &data, b"", &seed, &limits)
            .map_err(|e| fail(e.to_string()))?;
        wasm_times.push(start.elapsed());
        let (n, took) = run_native(&native, &data)?;
        native_times.push(took);
        native_out = n;
        wasm_out = Some(out);
    }
    let wasm_out = wasm_out.expect("at least one run");
    if wasm_out.status != RunStatus::Success {
        return Err(fail(format!("the sandboxed job ended {:?}", wasm_out.status)).into());
    }
    let same_output = wasm_out.output == native_out;

    // The validator's re-run, compiled for baseline CPU features.
    let baseline =
        Sandbox::with_features(CpuFeatures::Baseline).map_err(|e| fail(e.to_string()))?;
    let again = baseline.load(wasm).map_err(|e| fail(e.to_string()))?;
    let rerun = baseline
        .run(&again, &data, b"", &seed, &limits)
        .map_err(|e| fail(e.to_string()))?;
    let identical = rerun.output == wasm_out.output && rerun.fuel_used == wasm_out.fuel_used;

    let (w, n) = (median(wasm_times), median(native_times));
    let ratio = w.as_secs_f64() / n.as_secs_f64().max(1e-9);
    let mb = size as f64 / (1u64 << 20) as f64;
    if args.json {
        let v = json!({
            "compile_ms": compile.as_secs_f64() * 1e3,
            "startup_median_ms": startup_median.as_secs_f64() * 1e3,
            "startup_mean_ms": startup_mean.as_secs_f64() * 1e3,
            "startup_jobs": startup.len(),
            "csv_bytes": size,
            "wasm_s": w.as_secs_f64(),
            "native_s": n.as_secs_f64(),
            "wasm_over_native": ratio,
            "fuel": wasm_out.fuel_used,
            "outputs_equal": same_output,
            "baseline_rerun_identical": identical,
        });
        println!("{v}");
    } else {
        println!("| step | figure |");
        println!("|---|---|");
        println!(
            "| compile csv_stats.wasm (once) | {:.1} ms |",
            compile.as_secs_f64() * 1e3
        );
        println!(
            "| sandbox start-up per job, {} jobs (median / mean) | {:.3} / {:.3} ms |",
            startup.len(),
            startup_median.as_secs_f64() * 1e3,
            startup_mean.as_secs_f64() * 1e3
        );
        println!("| csv_stats over {mb:.0} MiB in the sandbox (median of {runs}) | {:.3} s ({:.0} MiB/s) |", w.as_secs_f64(), mb / w.as_secs_f64());
        println!(
            "| the same C natively, {} -O2 (median of {runs}) | {:.3} s ({:.0} MiB/s) |",
            args.cc.display(),
            n.as_secs_f64(),
            mb / n.as_secs_f64()
        );
        println!("| sandbox / native | {ratio:.2}x |");
        println!("| fuel used | {} |", wasm_out.fuel_used);
        println!(
            "| sandbox output equals native output | {} |",
            if same_output { "yes" } else { "NO" }
        );
        println!(
            "| baseline-CPU re-run: same output and fuel | {} |",
            if identical { "yes" } else { "NO" }
        );
    }
    if !same_output || !identical {
        return Err(fail("outputs differ: see the table").into());
    }
    Ok(())
}
