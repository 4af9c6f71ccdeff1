//! Verification core: audits a finished job from its transcript.
//!
//! [`check_job`] checks the signed receipt against the transcript, recomputes
//! the job's hidden states and logits with one teacher-forced prefill of the
//! claimed model ([`Scorer`]), compares the provider's TOPLOC commitments
//! (`agora-toploc`) and replays the seeded Gumbel-max sampling token by token
//! (Token-DiFR style, [`replay`]). [`Thresholds`] come from [`calibrate()`] runs
//! over honest jobs and are kept per model in a [`ThresholdBook`].
//! [`check_job_statistically`] judges jobs that cannot be replayed (an
//! upstream server's) by how plausible their tokens are under the model
//! ([`plausible`]). [`check_embedding_job`] audits embedding jobs by
//! embedding their inputs again.

pub mod calibrate;
mod check;
mod embedding;
pub mod plausible;
pub mod replay;
mod thresholds;

pub use calibrate::{calibrate, Calibration, CalibrationConfig};
pub use check::{
    check_job, check_job_statistically, CommitmentStats, Scorer, Verdict, VerifyError,
};
pub use embedding::{check_embedding_job, MIN_EMBEDDING_COSINE};
pub use plausible::{plausibility, Plausibility};
pub use replay::TokenStats;
pub use thresholds::{BookError, ThresholdBook, Thresholds};
