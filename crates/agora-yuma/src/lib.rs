//! Yuma consensus per tempo, as a pure function.
//!
//! Each market (a model or task type) has validators, who hold stake and
//! submit weights over the market's providers (by commit-reveal, outside this
//! crate), and providers, identified by a `u16` uid. Once per tempo the chain
//! calls [`epoch`] with the stakes, the revealed weights, the bonds carried
//! from the previous tempo and the emission to pay out; it returns the
//! consensus per provider, incentive, validator trust, dividends, the new
//! bonds and the integer emission for every provider, validator and the
//! market owner.
//!
//! The algorithm follows subtensor's classic Yuma (Yuma3 off, liquid alpha
//! off): validator permits by stake (top k), stake-weighted median of weights
//! per provider (κ), clipping to that consensus, incentive from clipped ranks,
//! bonds as an exponential moving average of clipped weight × stake, and
//! dividends from bonds × incentive. `docs/protocol.md` states the formulas
//! and the constants.
//!
//! Everything is deterministic integer arithmetic: proportions are unsigned
//! Q32.32 fixed point ([`fixed::ONE`] = 2^32), parameters are parts per
//! million, and emission amounts sum exactly to the input emission. No I/O,
//! no clocks, no floats.

mod bonds;
mod consensus;
mod emission;
mod epoch;
mod error;
pub mod fixed;
mod input;
mod params;
mod sparse;

pub use epoch::{epoch, YumaOutput};
pub use error::YumaError;
pub use input::YumaInput;
pub use params::YumaParams;
