//! The example algorithms shipped with agora, built from C by
//! `scripts/build-wasm.sh` and committed as WebAssembly.

/// One shipped example algorithm.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// Short name, used on the command line.
    pub name: &'static str,
    /// What it computes and which parameters it takes.
    pub about: &'static str,
    /// The module's bytes.
    pub wasm: &'static [u8],
}

/// Every shipped example, in a stable order.
pub const EXAMPLES: [Example; 3] = [
    Example {
        name: "csv_stats",
        about: "count, min, max, mean and stddev of every CSV column; params: file=NAME",
        wasm: include_bytes!("../algorithms/wasm/csv_stats.wasm"),
    },
    Example {
        name: "quantiles",
        about: "histogram and exact quantiles of one CSV column; params: column=NAME bins=N quantiles=Q,Q file=NAME",
        wasm: include_bytes!("../algorithms/wasm/quantiles.wasm"),
    },
    Example {
        name: "kmeans",
        about: "k-means (k-means++ from the job seed) on CSV columns, outputs centroids; params: columns=A,B k=N iterations=N file=NAME",
        wasm: include_bytes!("../algorithms/wasm/kmeans.wasm"),
    },
];

/// The shipped example called `name`.
pub fn example(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.name == name)
}
