//! The sandbox runs the shipped algorithms correctly and repeatably, and
//! turns every way a hostile or broken module can misbehave into a clear,
//! deterministic status or error.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agora_sandbox::{
    algorithm_id, example, CpuFeatures, Limits, RunOutcome, RunStatus, Sandbox, SandboxError,
    EXAMPLES,
};
use serde_json::Value;
use tempfile::TempDir;

/// A dataset folder holding `data.csv`.
fn dataset(csv: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.csv"), csv).unwrap();
    dir
}

fn run(sandbox: &Sandbox, wasm: &[u8], dir: &Path, params: &str, limits: &Limits) -> RunOutcome {
    let algorithm = sandbox.load(wasm).unwrap();
    sandbox
        .run(&algorithm, dir, params.as_bytes(), &[7; 32], limits)
        .unwrap()
}

/// Example `name`'s JSON output over `csv` as `data.csv`, with `params`
/// and the default limits (the run must succeed).
fn run_example(name: &str, csv: &str, params: &str) -> Value {
    let dir = dataset(csv);
    let sandbox = Sandbox::new().unwrap();
    let wasm = example(name).unwrap().wasm;
    json(&run(&sandbox, wasm, dir.path(), params, &Limits::default()))
}

fn json(outcome: &RunOutcome) -> Value {
    assert_eq!(
        outcome.status,
        RunStatus::Success,
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    serde_json::from_slice(&outcome.output).unwrap()
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// A deterministic pseudo-random sequence for test data (splitmix64).
fn numbers(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2000.0
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn example_ids_are_pinned() {
    // BLAKE3 of the committed modules, computed with Python's `blake3` package;
    // `scripts/build-wasm.sh --check` proves the committed bytes rebuild.
    let pinned = [
        (
            "csv_stats",
            "439acf5132ea211656caa0bd9771f38bc08e86d12a90bab0e63301b6a5ea1b94",
        ),
        (
            "quantiles",
            "b2b0ea3bad1b17963c847c3b17a2923313496d1ba1f3a6d5f69bd813070d9bab",
        ),
        (
            "kmeans",
            "93e429ad54322e5c0e5b8878cab94e2fd42c51bde4f90cf94d40d8b5e8c0cb91",
        ),
    ];
    assert_eq!(EXAMPLES.len(), pinned.len());
    for (name, id) in pinned {
        let found = example(name).unwrap();
        assert_eq!(hex::encode(algorithm_id(found.wasm)), id, "{name}");
    }
    assert!(example("nope").is_none());
}

#[test]
fn csv_stats_match_an_independent_computation() {
    let xs = numbers(2000, 1);
    let ys = numbers(2000, 2);
    let mut csv = String::from("x,\"label, quoted\",y\n");
    for (i, (x, y)) in xs.iter().zip(&ys).enumerate() {
        // Every tenth y is text: it is counted as non-numeric, not used.
        let y = if i % 10 == 0 {
            "n/a".to_string()
        } else {
            format!("{y:e}")
        };
        csv.push_str(&format!("{x},\"row {i}\",{y}\r\n"));
    }
    let out = run_example("csv_stats", &csv, "");
    assert_eq!(out["rows"], 2000);
    let columns = out["columns"].as_array().unwrap();
    assert_eq!(columns[1]["name"], "label, quoted");
    assert_eq!(columns[1]["count"], 0);
    assert_eq!(columns[1]["non_numeric"], 2000);
    let used_y: Vec<f64> = ys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 0)
        .map(|(_, y)| *y)
        .collect();
    for (column, values) in [(&columns[0], &xs), (&columns[2], &used_y)] {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(column["count"], values.len());
        assert!(close(column["mean"].as_f64().unwrap(), mean), "{column}");
        assert!(
            close(column["stddev"].as_f64().unwrap(), var.sqrt()),
            "{column}"
        );
        assert!(close(column["min"].as_f64().unwrap(), min));
        assert!(close(column["max"].as_f64().unwrap(), max));
    }
    assert_eq!(columns[2]["non_numeric"], 200);
}

/// Over 3 MiB, so lines straddle the 1 MiB read buffer many times, with
/// CRLF and LF endings, blank lines, padded numbers and quoted text mixed in.
#[test]
fn csv_stats_reads_lines_across_read_buffers() {
    let xs = numbers(120_000, 5);
    let mut csv = String::from("v,t\r\n");
    for (i, x) in xs.iter().enumerate() {
        let end = if i % 2 == 0 { "\r\n" } else { "\n" };
        csv.push_str(&format!(" {x} ,\"q, {i}\"{end}"));
        if i % 1_000 == 0 {
            csv.push_str(end);
        }
    }
    assert!(csv.len() > 3 << 20);
    let out = run_example("csv_stats", &csv, "");
    assert_eq!(out["rows"], 120_000);
    let v = &out["columns"][0];
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    assert_eq!(v["count"], 120_000);
    assert!(close(v["mean"].as_f64().unwrap(), mean), "{v}");
    assert!(close(
        v["max"].as_f64().unwrap(),
        xs.iter().cloned().fold(f64::MIN, f64::max)
    ));
    assert_eq!(out["columns"][1]["non_numeric"], 120_000);
}

#[test]
fn quantiles_are_exact_and_the_histogram_covers_every_value() {
    // 1..=1001 in a scrambled order: the median is 501, the 0.9 quantile 901.
    let mut csv = String::from("v\n");
    for i in 0..1001u64 {
        csv.push_str(&format!("{}\n", (i * 389) % 1001 + 1));
    }
    csv.push_str("oops\n");
    let out = run_example(
        "quantiles",
        &csv,
        "column=v bins=4 quantiles=0,0.5,0.9,0.25,1",
    );
    assert_eq!(out["count"], 1001);
    assert_eq!(out["non_numeric"], 1);
    let q: Vec<(f64, f64)> = out["quantiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["q"].as_f64().unwrap(), q["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        q,
        vec![
            (0.0, 1.0),
            (0.5, 501.0),
            (0.9, 901.0),
            (0.25, 251.0),
            (1.0, 1001.0)
        ]
    );
    let counts: Vec<u64> = out["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![250, 250, 250, 251]);
}

#[test]
fn kmeans_recovers_separated_clusters() {
    let centers = [(-500.0, 0.0), (0.0, 800.0), (600.0, -300.0)];
    let noise = numbers(900, 3);
    let mut csv = String::from("a,b\n");
    for (i, pair) in noise.chunks(2).enumerate() {
        let (cx, cy) = centers[i % 3];
        csv.push_str(&format!(
            "{},{}\n",
            cx + pair[0] / 100.0,
            cy + pair[1] / 100.0
        ));
    }
    let out = run_example("kmeans", &csv, "columns=a,b k=3");
    assert_eq!(out["rows"], 450);
    let clusters = out["clusters"].as_array().unwrap();
    for (cx, cy) in centers {
        let found = clusters.iter().find(|c| {
            let p = c["centroid"].as_array().unwrap();
            (p[0].as_f64().unwrap() - cx).abs() < 5.0 && (p[1].as_f64().unwrap() - cy).abs() < 5.0
        });
        assert_eq!(found.expect("a centroid near each center")["size"], 150);
    }
}

#[test]
fn a_bad_parameter_exits_with_code_2_and_a_message() {
    let dir = dataset("a\n1\n");
    let sandbox = Sandbox::new().unwrap();
    let out = run(
        &sandbox,
        example("quantiles").unwrap().wasm,
        dir.path(),
        "column=missing",
        &Limits::default(),
    );
    assert_eq!(out.status, RunStatus::Exit(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such column: missing"));
    let out = run(
        &sandbox,
        example("csv_stats").unwrap().wasm,
        dir.path(),
        "file=../etc/passwd",
        &Limits::default(),
    );
    assert_eq!(out.status, RunStatus::Exit(2));
}

/// Every example, run with the same inputs, gives one (status, output, fuel).
fn all_runs(sandbox: &Sandbox, dir: &Path) -> Vec<(RunStatus, Vec<u8>, u64)> {
    let params = ["", "column=x quantiles=0.1,0.5", "columns=x,y k=4"];
    EXAMPLES
        .iter()
        .zip(params)
        .map(|(e, p)| {
            let o = run(sandbox, e.wasm, dir, p, &Limits::default());
            assert_eq!(o.status, RunStatus::Success);
            (o.status, o.output, o.fuel_used)
        })
        .collect()
}

fn xy_dataset() -> TempDir {
    let xs = numbers(3000, 11);
    let ys = numbers(3000, 12);
    let mut csv = String::from("x,y\n");
    for (x, y) in xs.iter().zip(&ys) {
        csv.push_str(&format!("{x},{y}\n"));
    }
    dataset(&csv)
}

#[test]
fn reruns_match_exactly_across_cpu_features_and_threads() {
    let dir = xy_dataset();
    let host = Sandbox::with_features(CpuFeatures::Host).unwrap();
    let baseline = Sandbox::with_features(CpuFeatures::Baseline).unwrap();
    let expected = all_runs(&host, dir.path());
    assert!(expected.iter().all(|(_, _, fuel)| *fuel > 0));
    assert_eq!(
        all_runs(&host, dir.path()),
        expected,
        "a second run on the same sandbox"
    );
    assert_eq!(
        all_runs(&baseline, dir.path()),
        expected,
        "baseline x86-64 features"
    );
    let dir = Arc::new(dir);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (host, dir) = (host.clone(), dir.clone());
            std::thread::spawn(move || all_runs(&host, dir.path()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), expected, "four runs at once");
    }
}

#[test]
fn a_module_cannot_write_the_dataset_escape_it_or_observe_time() {
    let dir = dataset("a\n1\n");
    let sandbox = Sandbox::new().unwrap();
    let probe = include_bytes!("probe/probe.wasm");
    let out = json(&run(&sandbox, probe, dir.path(), "", &Limits::default()));
    for denied in ["write_existing", "create", "unlink", "escape", "host_file"] {
        assert_eq!(out[denied], 0, "{denied} must be refused: {out}");
    }
    assert_eq!(out["read"], 1);
    assert_eq!(out["time"], 0);
    // The job's only randomness: BLAKE3 derive_key("agora 2026 sandbox random v1", seed)
    // in XOF mode, read as little-endian u32 words, one guest byte per word (its low
    // byte); computed with Python's `blake3` package as bytes 0, 4, 8, ... of the stream.
    assert_eq!(out["random"], "f231068ee2eb2dfa");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data.csv")).unwrap(),
        "a\n1\n"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let algorithm = sandbox.load(probe).unwrap();
    let other = sandbox
        .run(&algorithm, dir.path(), b"", &[8; 32], &Limits::default())
        .unwrap();
    assert_eq!(
        json(&other)["random"],
        "1fabbccb7c08e107",
        "another seed, another stream"
    );
}

const SPIN: &str = r#"(module (func (export "_start") (loop br 0)))"#;

#[test]
fn running_out_of_fuel_stops_the_run_and_burns_the_whole_budget() {
    let dir = dataset("");
    let sandbox = Sandbox::new().unwrap();
    let limits = Limits {
        max_fuel: 1_000_000,
        ..Limits::default()
    };
    let out = run(&sandbox, &wat(SPIN), dir.path(), "", &limits);
    assert_eq!(out.status, RunStatus::OutOfFuel);
    assert_eq!(out.fuel_used, 1_000_000);
    assert!(out.output.is_empty());
}

#[test]
fn the_wall_clock_deadline_interrupts_a_run_with_fuel_to_spare() {
    let dir = dataset("");
    let sandbox = Sandbox::new().unwrap();
    let limits = Limits {
        max_fuel: u64::MAX / 2,
        deadline: Duration::from_millis(50),
        ..Limits::default()
    };
    let out = run(&sandbox, &wat(SPIN), dir.path(), "", &limits);
    assert_eq!(out.status, RunStatus::DeadlineExceeded);
    assert!(out.fuel_used < limits.max_fuel);
}

#[test]
fn a_trap_and_an_exit_code_are_reported_as_such() {
    let dir = dataset("");
    let sandbox = Sandbox::new().unwrap();
    let trap = run(
        &sandbox,
        &wat(r#"(module (func (export "_start") unreachable))"#),
        dir.path(),
        "",
        &Limits::default(),
    );
    assert_eq!(trap.status, RunStatus::Trap);
    let exit = wat(
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (func (export "_start") (call $exit (i32.const 3))))"#,
    );
    let out = run(&sandbox, &exit, dir.path(), "", &Limits::default());
    assert_eq!(out.status, RunStatus::Exit(3));
}

#[test]
fn growing_memory_past_the_cap_is_memory_exceeded() {
    let dir = dataset("");
    let sandbox = Sandbox::new().unwrap();
    let grow = wat(r#"(module (memory (export "memory") 1)
            (func (export "_start") (loop (drop (memory.grow (i32.const 16))) br 0)))"#);
    let limits = Limits {
        memory_bytes: 4 << 20,
        ..Limits::default()
    };
    let out = run(&sandbox, &grow, dir.path(), "", &limits);
    assert_eq!(out.status, RunStatus::MemoryExceeded);
    // A module declaring more initial memory than the cap cannot even start.
    let big = wat(r#"(module (memory (export "memory") 200) (func (export "_start")))"#);
    assert_eq!(
        run(&sandbox, &big, dir.path(), "", &limits).status,
        RunStatus::MemoryExceeded
    );
}

/// A module writing `chunks` × 64 KiB to stdout, then exiting normally.
fn writer(chunks: u32) -> Vec<u8> {
    wat(&format!(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 2)
            (func (export "_start") (local $i i32)
              (i32.store (i32.const 0) (i32.const 1024))
              (i32.store (i32.const 4) (i32.const 65536))
              (block $done (loop $more
                (br_if $done (i32.ge_u (local.get $i) (i32.const {chunks})))
                (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $more)))))"#
    ))
}

#[test]
fn output_past_the_cap_is_output_too_large_and_kept_from_the_buyer() {
    let dir = dataset("");
    let sandbox = Sandbox::new().unwrap();
    let limits = Limits {
        output_bytes: 4 << 16,
        ..Limits::default()
    };
    let at_cap = run(&sandbox, &writer(4), dir.path(), "", &limits);
    assert_eq!(at_cap.status, RunStatus::Success);
    assert_eq!(at_cap.output.len(), 4 << 16);
    let over = run(&sandbox, &writer(5), dir.path(), "", &limits);
    assert_eq!(over.status, RunStatus::OutputTooLarge);
    assert!(over.output.is_empty());
}

#[test]
fn modules_the_sandbox_cannot_run_are_refused_before_running() {
    let sandbox = Sandbox::new().unwrap();
    assert!(matches!(
        sandbox.load(b"not wasm"),
        Err(SandboxError::InvalidModule(_))
    ));
    let no_start = wat(r#"(module (func (export "main")))"#);
    assert!(matches!(
        sandbox.load(&no_start),
        Err(SandboxError::NoEntryPoint)
    ));
    let socket = wat(r#"(module (import "env" "connect" (func)) (func (export "_start")))"#);
    let err = sandbox.load(&socket).unwrap_err();
    assert!(
        matches!(&err, SandboxError::UnsupportedImport(what) if what == "env::connect"),
        "{err}"
    );
    let unknown = wat(
        r#"(module (import "wasi_snapshot_preview1" "sock_open" (func (param i32) (result i32)))
            (func (export "_start")))"#,
    );
    assert!(matches!(
        sandbox.load(&unknown),
        Err(SandboxError::UnsupportedImport(_))
    ));
}

#[test]
fn the_compiled_module_is_cached_by_id() {
    let sandbox = Sandbox::new().unwrap();
    let wasm = example("csv_stats").unwrap().wasm;
    let id = algorithm_id(wasm);
    assert!(sandbox.cached(&id).is_none());
    assert_eq!(sandbox.load(wasm).unwrap().id(), id);
    assert_eq!(sandbox.cached(&id).unwrap().id(), id);
}

#[test]
fn unusable_limits_and_a_missing_dataset_are_errors() {
    let sandbox = Sandbox::new().unwrap();
    let algorithm = sandbox.load(example("csv_stats").unwrap().wasm).unwrap();
    let dir = dataset("a\n");
    for limits in [
        Limits {
            max_fuel: 0,
            ..Limits::default()
        },
        Limits {
            memory_bytes: 1000,
            ..Limits::default()
        },
        Limits {
            deadline: Duration::ZERO,
            ..Limits::default()
        },
    ] {
        let err = sandbox
            .run(&algorithm, dir.path(), b"", &[0; 32], &limits)
            .unwrap_err();
        assert!(matches!(err, SandboxError::InvalidLimits(_)));
    }
    let err = sandbox
        .run(
            &algorithm,
            Path::new("/no/such/dataset"),
            b"",
            &[0; 32],
            &Limits::default(),
        )
        .unwrap_err();
    assert!(matches!(err, SandboxError::Dataset { .. }), "{err}");
}
