//! The wasmtime engine, its module cache, and one run.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, OptLevel, ResourceLimiter, Store, Trap,
};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::determinism::{FrozenClock, SeededRandom};
use crate::{Limits, RunOutcome, RunStatus, SandboxError, DATA_MOUNT};

/// How often the deadline clock ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Which CPU features compiled code may use; both give identical results
/// (pinned by tests), `Baseline` exists to prove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuFeatures {
    /// Everything the host CPU offers (AVX, BMI, ...).
    Host,
    /// Only Cranelift's default features for the target (on x86-64: up to
    /// SSE4.2, no AVX, BMI or FMA): what an old machine has.
    Baseline,
}

/// A compiled algorithm, ready to instantiate quickly.
#[derive(Clone)]
pub struct Algorithm {
    id: [u8; 32],
    pre: InstancePre<RunState>,
}

impl std::fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Algorithm")
            .field("id", &hex_id(&self.id))
            .finish()
    }
}

/// An id as lowercase hex, for messages.
fn hex_id(id: &[u8; 32]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Algorithm {
    /// The module's content id (BLAKE3 of its bytes).
    pub fn id(&self) -> [u8; 32] {
        self.id
    }
}

/// Per-run host state: the WASI context and the memory cap.
struct RunState {
    wasi: WasiP1Ctx,
    limiter: MemoryCap,
}

/// Caps linear memory and remembers whether the cap was hit, so a failed
/// grow is reported as [`RunStatus::MemoryExceeded`] rather than a trap.
struct MemoryCap {
    max: usize,
    hit: bool,
}

/// The error a grow past the cap traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes reached")]
struct MemoryLimitReached(usize);

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitReached(self.max)));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Runs algorithms: one wasmtime engine configured for determinism, the
/// modules it compiled (by id), and a thread ticking the deadline clock.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<RunState>,
    cache: Mutex<HashMap<[u8; 32], Algorithm>>,
}

impl Sandbox {
    /// A sandbox compiling for all of the host CPU's features.
    pub fn new() -> Result<Arc<Self>, SandboxError> {
        Self::with_features(CpuFeatures::Host)
    }

    /// A sandbox whose compiled code uses only `features`.
    pub fn with_features(features: CpuFeatures) -> Result<Arc<Self>, SandboxError> {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .cranelift_opt_level(OptLevel::Speed)
            .max_wasm_stack(1 << 20);
        if features == CpuFeatures::Baseline {
            // Naming the target explicitly stops Cranelift from probing the host,
            // so it compiles for the target's default feature set only.
            config
                .target(&target_lexicon::HOST.to_string())
                .map_err(|e| SandboxError::InvalidModule(e.to_string()))?;
        }
        let engine =
            Engine::new(&config).map_err(|e| SandboxError::InvalidModule(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |s: &mut RunState| &mut s.wasi)
            .map_err(|e| SandboxError::InvalidModule(e.to_string()))?;
        let sandbox = Arc::new(Self {
            engine,
            linker,
            cache: Mutex::new(HashMap::new()),
        });
        spawn_ticker(Arc::downgrade(&sandbox));
        Ok(sandbox)
    }

    /// Compile `wasm` (or return the cached compilation of the same bytes).
    pub fn load(&self, wasm: &[u8]) -> Result<Algorithm, SandboxError> {
        let id = crate::algorithm_id(wasm);
        if let Some(found) = self.cached(&id) {
            return Ok(found);
        }
        let module = Module::new(&self.engine, wasm)
            .map_err(|e| SandboxError::InvalidModule(format!("{e:#}")))?;
        if module.get_export("_start").is_none() {
            return Err(SandboxError::NoEntryPoint);
        }
        for import in module.imports() {
            if import.module() != "wasi_snapshot_preview1" {
                return Err(SandboxError::UnsupportedImport(format!(
                    "{}::{}",
                    import.module(),
                    import.name()
                )));
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::UnsupportedImport(format!("{e:#}")))?;
        let algorithm = Algorithm { id, pre };
        self.cache
            .lock()
            .expect("cache lock")
            .insert(id, algorithm.clone());
        Ok(algorithm)
    }

    /// The compiled algorithm with this id, if loaded before.
    pub fn cached(&self, id: &[u8; 32]) -> Option<Algorithm> {
        self.cache.lock().expect("cache lock").get(id).cloned()
    }

    /// Run `algorithm` over the dataset in `dataset_dir` (mounted read-only at
    /// [`DATA_MOUNT`]) with `params` on stdin and randomness from `seed`.
    /// Blocking: call it from a blocking thread, not an async task.
    pub fn run(
        &self,
        algorithm: &Algorithm,
        dataset_dir: &Path,
        params: &[u8],
        seed: &[u8; 32],
        limits: &Limits,
    ) -> Result<RunOutcome, SandboxError> {
        limits.check()?;
        // One byte over the cap is kept, so "exactly at the cap" and "over it" differ.
        let stdout = MemoryOutputPipe::new(limits.output_bytes.saturating_add(1));
        let stderr = MemoryOutputPipe::new(limits.stderr_bytes);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdin(MemoryInputPipe::new(params.to_vec()))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg("algorithm")
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(SeededRandom::new(seed))
            .insecure_random(SeededRandom::new(&blake3::hash(seed).into()))
            .insecure_random_seed(0)
            .allow_blocking_current_thread(true)
            .preopened_dir(dataset_dir, DATA_MOUNT, FsPerms::ReadOnly)
            .map_err(|e| SandboxError::Dataset {
                path: dataset_dir.display().to_string(),
                reason: format!("{e:#}"),
            })?;
        let state = RunState {
            wasi: wasi.build_p1(),
            limiter: MemoryCap {
                max: limits.memory_bytes,
                hit: false,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(limits.max_fuel)
            .expect("fuel is enabled in the config");
        let ticks = limits.deadline.as_millis() / EPOCH_TICK.as_millis();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        let result = algorithm
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()));
        let fuel_left = store.get_fuel().expect("fuel is enabled in the config");
        let fuel_used = limits.max_fuel - fuel_left;
        let mut status = match result {
            Ok(()) => RunStatus::Success,
            Err(e) => classify(&e, store.data().limiter.hit),
        };
        let mut output = stdout.contents().to_vec();
        // Once the pipe is full further writes fail with an error the module
        // may ignore, exit on or trap on; whichever follows, the cause is the cap.
        if status != RunStatus::DeadlineExceeded && output.len() > limits.output_bytes {
            status = RunStatus::OutputTooLarge;
        }
        if !status.completed() {
            output.clear();
        }
        drop(store);
        Ok(RunOutcome {
            status,
            output,
            fuel_used,
            stderr: stderr.contents().to_vec(),
        })
    }
}

/// Map a run's error to how it ended.
fn classify(error: &wasmtime::Error, memory_cap_hit: bool) -> RunStatus {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return if exit.0 == 0 {
            RunStatus::Success
        } else {
            RunStatus::Exit(exit.0)
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => RunStatus::OutOfFuel,
        Some(Trap::Interrupt) => RunStatus::DeadlineExceeded,
        _ if memory_cap_hit => RunStatus::MemoryExceeded,
        _ => RunStatus::Trap,
    }
}

/// Advance the engine's epoch every [`EPOCH_TICK`] while the sandbox lives.
fn spawn_ticker(sandbox: Weak<Sandbox>) {
    std::thread::Builder::new()
        .name("sandbox-epoch".into())
        .spawn(move || {
            while let Some(sandbox) = sandbox.upgrade() {
                sandbox.engine.increment_epoch();
                drop(sandbox);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the sandbox's epoch thread");
}
