//! The consensus committee elected from stake. A bonded validator announces
//! the key its node signs consensus messages with and the address peers reach
//! it at; at every committee epoch boundary the ledger elects the validators
//! with the most bonded stake (own plus delegated) among those that announced
//! an endpoint. The result is pure ledger state, identical on every node, and
//! is what the consensus layer reads to configure the next epoch.

use agora_types::{possession_message, AccountId, Amount, Height, Signature};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{State, TxError};

/// Longest accepted p2p address (`host:port`).
pub const MAX_P2P_ADDR_LEN: usize = 128;

/// Where a validator's node takes part in consensus.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidatorEndpoint {
    /// The node's ed25519 consensus (p2p identity) public key; kept apart from
    /// the staking account so the stake key can stay offline.
    pub consensus_key: AccountId,
    /// `host:port` its peers dial.
    pub p2p_addr: String,
}

/// One elected committee member.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitteeMember {
    /// The validator's staking account.
    pub validator: AccountId,
    /// Its announced endpoint at election time.
    pub endpoint: ValidatorEndpoint,
    /// Its bonded stake (own plus delegated) at election time.
    pub stake: Amount,
}

/// The committee of one epoch.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Committee {
    /// Epoch it serves (0: none elected yet; consensus keeps its genesis set).
    pub epoch: u64,
    /// Height of the election.
    pub elected_at: Height,
    /// Members by decreasing stake (ties by account).
    pub members: Vec<CommitteeMember>,
}

/// Whether `addr` looks like `host:port` with a non-empty host and a port in 1..=65535.
fn valid_p2p_addr(addr: &str) -> bool {
    if addr.len() > MAX_P2P_ADDR_LEN || addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && port.parse::<u16>().map(|p| p > 0).unwrap_or(false)
        }
        None => false,
    }
}

impl State {
    /// `AnnounceValidator`: a bonded validator that holds the consensus key
    /// (it signed the proof of possession) sets (or replaces) its endpoint.
    pub(crate) fn announce_validator(
        &mut self,
        from: AccountId,
        consensus_key: AccountId,
        p2p_addr: &str,
        possession: &Signature,
    ) -> Result<(), TxError> {
        if !self.validators.contains_key(&from) {
            return Err(TxError::NotAValidator(from));
        }
        // First come would otherwise be first served: anyone could announce
        // a victim's consensus key before it does and keep it off the committee.
        consensus_key
            .verify(&possession_message(&self.chain_id, &from), possession)
            .map_err(|_| TxError::BadPossession(consensus_key))?;
        if !valid_p2p_addr(p2p_addr) {
            return Err(TxError::InvalidField {
                field: "p2p_addr",
                reason: format!("expected host:port of at most {MAX_P2P_ADDR_LEN} bytes"),
            });
        }
        let taken = self
            .validator_endpoints
            .iter()
            .any(|(owner, e)| *owner != from && e.consensus_key == consensus_key);
        if taken {
            return Err(TxError::ConsensusKeyTaken(consensus_key));
        }
        self.validator_endpoints.insert(
            from,
            ValidatorEndpoint {
                consensus_key,
                p2p_addr: p2p_addr.to_string(),
            },
        );
        Ok(())
    }

    /// The committee the current stake and endpoints would elect now.
    pub fn elect_committee(&self) -> Vec<CommitteeMember> {
        let mut candidates: Vec<CommitteeMember> = self
            .validator_endpoints
            .iter()
            .filter_map(|(id, endpoint)| {
                let stake = self.validators.get(id)?.total();
                (stake > 0).then(|| CommitteeMember {
                    validator: *id,
                    endpoint: endpoint.clone(),
                    stake,
                })
            })
            .collect();
        candidates.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.validator.cmp(&b.validator)));
        candidates.truncate(self.params.committee.max_members as usize);
        candidates
    }

    /// At a committee epoch boundary, elect the next committee. An election
    /// with no candidates keeps the previous committee: consensus never gets
    /// an empty set.
    pub(crate) fn maybe_elect_committee(&mut self, height: Height) {
        let every = self.params.committee.epoch_blocks;
        if every == 0 || height == 0 || !height.is_multiple_of(every) {
            return;
        }
        let members = self.elect_committee();
        if members.is_empty() {
            return;
        }
        self.committee = Committee {
            epoch: height / every,
            elected_at: height,
            members,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::valid_p2p_addr;

    #[test]
    fn p2p_addresses_need_a_host_and_a_port() {
        assert!(valid_p2p_addr("127.0.0.1:26701"));
        assert!(valid_p2p_addr("validator.example:9000"));
        assert!(valid_p2p_addr("[::1]:9000"));
        assert!(!valid_p2p_addr("127.0.0.1"));
        assert!(!valid_p2p_addr(":9000"));
        assert!(!valid_p2p_addr("host:0"));
        assert!(!valid_p2p_addr("host:99999"));
        assert!(!valid_p2p_addr("ho st:9000"));
        assert!(!valid_p2p_addr(&format!("{}:1", "a".repeat(200))));
    }
}
