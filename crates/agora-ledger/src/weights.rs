//! Commit-reveal of validators' weights per model (market): a bonded
//! validator commits a hash in epoch `e` and reveals the weights in epoch
//! `e + 1` (no other), so a weight copier can only copy stale consensus.
//! Epoch of a height: `height / tempo_blocks`.

use std::collections::{BTreeMap, BTreeSet};

use agora_types::{weights_commitment, AccountId, Amount, Hash32, Height, ModelId, MAX_WEIGHTS};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{State, TxError};

/// Per-model weight and bond bookkeeping of the reward distribution.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Markets {
    /// Commitments by (model, validator, epoch committed in).
    pub commits: BTreeMap<(ModelId, AccountId, u64), Hash32>,
    /// Weights revealed this epoch, by (model, validator); consumed at the
    /// next tempo boundary.
    pub reveals: BTreeMap<(ModelId, AccountId), Vec<(AccountId, u16)>>,
    /// Each model's bonds after its last epoch: validator → (provider, bond).
    pub bonds: BTreeMap<ModelId, BTreeMap<AccountId, Vec<(AccountId, u64)>>>,
    /// Each model's consensus weights after its last epoch (Q32.32), by provider.
    pub consensus: BTreeMap<ModelId, Vec<(AccountId, u64)>>,
}

impl Markets {
    /// The validators taking part in `model`'s market: a weight commitment
    /// or reveal pending, or a bond from its last epoch. They are the ones
    /// auditing its providers (replaying needs the model), so its batches'
    /// audits and disputes are drawn among them.
    pub fn participants(&self, model: &ModelId) -> BTreeSet<AccountId> {
        let mut out: BTreeSet<AccountId> = self
            .commits
            .keys()
            .filter(|(m, _, _)| m == model)
            .map(|(_, v, _)| *v)
            .collect();
        out.extend(
            self.reveals
                .keys()
                .filter(|(m, _)| m == model)
                .map(|(_, v)| *v),
        );
        if let Some(bonds) = self.bonds.get(model) {
            out.extend(bonds.keys().copied());
        }
        out
    }

    /// Who may be drawn for work on a batch of `model`: the candidates in
    /// its market, or every candidate while none of them has joined it (a
    /// new market, or a chain without rewards).
    pub fn audit_pool(
        &self,
        candidates: &[(AccountId, Amount)],
        model: Option<&ModelId>,
    ) -> Vec<(AccountId, Amount)> {
        let Some(model) = model else {
            return candidates.to_vec();
        };
        let members = self.participants(model);
        let pool: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|(who, _)| members.contains(who))
            .collect();
        if pool.is_empty() {
            candidates.to_vec()
        } else {
            pool
        }
    }
}

impl State {
    /// The epoch `height` falls in (`None` while rewards are off: `tempo_blocks = 0`).
    pub fn epoch_of(&self, height: Height) -> Option<u64> {
        height.checked_div(self.params.tempo_blocks)
    }

    fn weights_epoch(&self, height: Height) -> Result<u64, TxError> {
        self.epoch_of(height).ok_or(TxError::InvalidField {
            field: "tempo_blocks",
            reason: "this chain has no reward distribution (tempo_blocks = 0)".into(),
        })
    }

    fn check_weight_setter(&self, sender: AccountId, model: &ModelId) -> Result<(), TxError> {
        if !self.validators.contains_key(&sender) {
            return Err(TxError::NotAValidator(sender));
        }
        if !self.models.contains_key(model) {
            return Err(TxError::UnknownModel(*model));
        }
        Ok(())
    }

    pub(crate) fn commit_weights(
        &mut self,
        sender: AccountId,
        model: ModelId,
        hash: Hash32,
        height: Height,
    ) -> Result<(), TxError> {
        let epoch = self.weights_epoch(height)?;
        self.check_weight_setter(sender, &model)?;
        self.markets.commits.insert((model, sender, epoch), hash);
        Ok(())
    }

    pub(crate) fn reveal_weights(
        &mut self,
        sender: AccountId,
        model: ModelId,
        weights: &[(AccountId, u16)],
        salt: &Hash32,
        height: Height,
    ) -> Result<(), TxError> {
        let epoch = self.weights_epoch(height)?;
        self.check_weight_setter(sender, &model)?;
        let distinct: BTreeSet<_> = weights.iter().map(|(p, _)| p).collect();
        if weights.len() > MAX_WEIGHTS || distinct.len() != weights.len() {
            return Err(TxError::InvalidField {
                field: "weights",
                reason: format!("at most {MAX_WEIGHTS} providers, none twice"),
            });
        }
        let key = (model, sender, epoch.wrapping_sub(1));
        let committed = match epoch
            .checked_sub(1)
            .and_then(|_| self.markets.commits.get(&key))
        {
            Some(hash) => *hash,
            None => return Err(TxError::NoWeightCommit { model, epoch }),
        };
        if committed != weights_commitment(&sender, &model, weights, salt) {
            return Err(TxError::WeightsMismatch);
        }
        self.markets.commits.remove(&key);
        self.markets
            .reveals
            .insert((model, sender), weights.to_vec());
        Ok(())
    }
}
