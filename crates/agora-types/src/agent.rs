//! Agents on chain: an identity with a bonded stake, endpoints and what it
//! can do (found through `GET /agents`), a reputation fed only by clients
//! who paid it (one feedback per payment, never from itself), and the
//! anchors of its tamper-evident action log (see the `agora-agent` crate).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{AccountId, Amount, Hash32, Height, ModelId};

/// Domain of [`agent_payment_id`].
const AGENT_PAYMENT_ID_DOMAIN: &str = "agora 2026 agent payment id v1";

/// Where an agent answers and how to talk to it there.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct AgentEndpoint {
    /// An `http://` or `https://` URL.
    pub url: String,
    /// The protocol spoken there (say `openai-chat`, `a2a`, `mcp`).
    pub protocol: String,
    /// Share of traffic a client should send here, relative to the others.
    pub weight: u16,
}

/// What an agent says about itself; replaced whole by `UpdateAgent`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AgentProfile {
    /// Short name.
    pub name: String,
    /// Where it answers.
    pub endpoints: Vec<AgentEndpoint>,
    /// What it can do (free tags such as `summarise`, `chain-watch`).
    pub capabilities: Vec<String>,
    /// The registered models it calls.
    pub models: Vec<ModelId>,
    /// Hash of its off-chain registration file (zero if none).
    pub metadata_hash: Hash32,
}

/// One anchor of an agent's action log: the log's first `count` entries
/// had Merkle root `root`, and the last of them hashed to `head`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct LogAnchor {
    /// Entries covered.
    pub count: u64,
    /// Merkle root over the covered entries' link hashes.
    pub root: Hash32,
    /// Link hash of the last covered entry.
    pub head: Hash32,
    /// Block that recorded the anchor.
    pub height: Height,
}

/// An agent's standing from its paying clients.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Reputation {
    /// Feedback counted (given and not revoked).
    pub count: u64,
    /// Sum of the counted scores (0 to 100 each).
    pub score_sum: u64,
    /// Feedback revoked by its authors.
    pub revoked: u64,
    /// Everything clients have paid the agent.
    pub paid: u128,
}

impl Reputation {
    /// Mean score of the counted feedback, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.score_sum as f64 / self.count as f64)
    }
}

/// A registered agent.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AgentEntry {
    /// Its account: the key that registered it, signs its log and pays its way.
    pub id: AccountId,
    /// What it says about itself.
    pub profile: AgentProfile,
    /// Bonded stake, returned on deregistration.
    pub stake: Amount,
    /// Bumped by every update; an update must name the next one.
    pub sequence: u64,
    /// Block it registered in.
    pub registered_at: Height,
    /// Last block it counts as live without a heartbeat.
    pub expires_at: Height,
    /// Its log anchors, oldest first.
    pub anchors: Vec<LogAnchor>,
    /// Its standing.
    pub reputation: Reputation,
}

impl AgentEntry {
    /// Whether it is live at `height` (its last heartbeat has not expired).
    pub fn live_at(&self, height: Height) -> bool {
        height <= self.expires_at
    }
}

/// A client's on-chain payment to an agent: the receipt that entitles the
/// client to one feedback.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AgentPayment {
    /// [`agent_payment_id`] of the payer and its transaction's nonce.
    pub id: Hash32,
    /// Who paid.
    pub payer: AccountId,
    /// The agent paid.
    pub agent: AccountId,
    /// How much.
    pub amount: Amount,
    /// What it paid for (a job id, a log entry's hash: the payer's choice).
    pub reference: Hash32,
    /// Block it was made in.
    pub height: Height,
}

/// A paying client's feedback on an agent.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Feedback {
    /// The payment that entitled it (one feedback per payment).
    pub payment: Hash32,
    /// The agent.
    pub agent: AccountId,
    /// The client that paid and wrote it.
    pub client: AccountId,
    /// 0 (worst) to 100 (best).
    pub score: u8,
    /// A short tag saying what it is about.
    pub tag: String,
    /// Block it was given in.
    pub height: Height,
    /// Whether its author took it back.
    pub revoked: bool,
}

/// Id of a payment to an agent: unique per payer and nonce.
pub fn agent_payment_id(payer: &AccountId, nonce: u64) -> Hash32 {
    let mut bytes = payer.0.to_vec();
    bytes.extend_from_slice(&nonce.to_le_bytes());
    Hash32::digest_in(AGENT_PAYMENT_ID_DOMAIN, &bytes)
}

/// The agent registry's chain parameters: the `[params.agents]` table.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentParams {
    /// Smallest stake an agent bonds: what makes an identity cost something.
    pub min_stake: Amount,
    /// Blocks a registration, update or heartbeat keeps an agent live.
    pub heartbeat_ttl_blocks: u64,
    /// Most endpoints, capabilities and models each.
    pub max_list: u32,
    /// Longest name, protocol, capability, URL or tag, in bytes.
    pub max_text_bytes: u32,
    /// Most log anchors one agent may record.
    pub max_log_anchors: u32,
    /// Smallest payment that entitles its payer to feedback.
    pub min_payment: Amount,
    /// Blocks after a payment within which its feedback may be given.
    pub feedback_window_blocks: u64,
}

impl Default for AgentParams {
    fn default() -> Self {
        Self {
            min_stake: 1_000,
            heartbeat_ttl_blocks: 1_200,
            max_list: 16,
            max_text_bytes: 128,
            max_log_anchors: 1_024,
            min_payment: 10,
            feedback_window_blocks: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned with Python's `blake3`: `blake3(bytes([7] * 32) +
    /// (5).to_bytes(8, "little"), derive_key_context="agora 2026 agent payment id v1")`.
    #[test]
    fn payment_ids_are_pinned() {
        let id = agent_payment_id(&AccountId([7; 32]), 5);
        assert_eq!(id.to_hex(), PINNED_PAYMENT_ID);
        assert_ne!(id, agent_payment_id(&AccountId([7; 32]), 6));
    }

    const PINNED_PAYMENT_ID: &str =
        "73aeb4805aca0bdfa88808c4ccffb7aa5fe86c67edec569700cfe1312eb64ed6";
}
