//! agora's protocol headers: the `x-agora-*` response headers a provider and
//! the gateway set and their clients read.

/// Header in which a provider names the job it started (the job id is also
/// the receipt id); the gateway repeats it to its client.
pub const JOB_ID_HEADER: &str = "x-agora-job-id";

/// Gateway response header with the receipt ids (comma-separated when `n` > 1).
pub const RECEIPT_HEADER: &str = "x-agora-receipt";

/// Gateway response header with the serving provider's account (hex).
pub const PROVIDER_HEADER: &str = "x-agora-provider";

/// Request header in which a validator signs its batch transcript fetch
/// (`x-agora-auditor`); defined with the signed record it carries in
/// `agora_types::access`, listed here with the other `x-agora-*` headers.
pub use agora_types::access::TRANSCRIPT_AUTH_HEADER;

/// Job request header with which a paying gateway tells a provider that a
/// payment channel pays for the job (value [`PAYMENT_CHANNEL`]): the job is
/// then committed by the channel's settlement, not in a receipt batch, so
/// it is committed (and auditable) once.
pub const PAYMENT_HEADER: &str = "x-agora-payment";

/// The [`PAYMENT_HEADER`] value for a job paid through a payment channel.
pub const PAYMENT_CHANNEL: &str = "channel";
