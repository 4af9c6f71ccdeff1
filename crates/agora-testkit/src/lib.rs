//! What agora's tests share, kept in one place instead of copied into every
//! crate's `tests/`: the real default model ([`model`]), a funded genesis
//! ([`GenesisBuilder`]), an engine double for provider tests
//! ([`TwoTokenEngine`]) and the pieces every HTTP fuzz test uses ([`fuzz`]).
//!
//! It is a dev-dependency only (`publish = false`). Tests that load the real
//! model must live in a test binary whose name starts with
//! [`model::REAL_MODEL_PREFIX`]: nextest selects those by that pattern and
//! runs each alone (llama.cpp's spinning workers make two of them on the CI
//! machine's 2 cores slow each other down tenfold), and [`model::path`]
//! refuses to hand the model to any other binary, so the pattern cannot drift.

mod engine;
pub mod fuzz;
mod genesis;
pub mod model;

pub use engine::TwoTokenEngine;
pub use genesis::GenesisBuilder;
