//! What a block explorer needs beyond the current state: a bounded
//! [`History`] of block summaries, supply, emission per tempo, slashes and
//! earnings, each derived from two consecutive committed states, and pages
//! of the current state ([`listing`]). Pure: no I/O, no clocks, so the node
//! feeds it as blocks commit and tests feed it hand-built states.

mod history;
pub mod listing;
pub mod rows;

pub use history::{
    kind_name, summary, History, MAX_BLOCKS, MAX_EARNINGS_POINTS, MAX_PAGE, MAX_SLASHES,
    MAX_TEMPOS, MAX_TXS_KEPT,
};
