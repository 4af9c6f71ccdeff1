//! Model royalties and earnings. A model's registry entry names its owner and
//! a royalty share; every channel settlement for that model pays
//! `floor(delta × royalty_ppm / 10⁶)` to the owner and the rest to the
//! provider, and both payments are added to the payees' [`Earnings`].

use agora_types::{royalty_of, AccountId, Amount, Earnings, ModelEntry, ModelId};

use crate::{State, TxError};

/// How one settlement's payment divides between provider and model owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettlementSplit {
    /// The channel's provider.
    pub provider: AccountId,
    /// What the provider receives: the voucher delta minus the royalty.
    pub to_provider: Amount,
    /// The model's owner.
    pub owner: AccountId,
    /// What the owner receives.
    pub royalty: Amount,
}

impl State {
    /// What `id` has earned since genesis (zero for an account that never earned).
    pub fn earnings(&self, id: &AccountId) -> Earnings {
        self.earnings.get(id).copied().unwrap_or_default()
    }

    /// Check a model `sender` registers: it must name the sender as owner and
    /// ask no more than the chain's largest royalty.
    pub(crate) fn check_model_terms(
        &self,
        sender: AccountId,
        model: &ModelEntry,
    ) -> Result<(), TxError> {
        if model.owner != sender {
            return Err(TxError::ModelOwnerMismatch {
                sender,
                owner: model.owner,
            });
        }
        if model.royalty_ppm > self.params.max_royalty_ppm {
            return Err(TxError::RoyaltyTooHigh {
                maximum: self.params.max_royalty_ppm,
                got: model.royalty_ppm,
            });
        }
        Ok(())
    }

    /// Check that `provider` is registered and serves `model`.
    pub(crate) fn check_serves(&self, provider: AccountId, model: ModelId) -> Result<(), TxError> {
        let info = self
            .providers
            .get(&provider)
            .ok_or(TxError::NotAProvider(provider))?;
        if !self.models.contains_key(&model) {
            return Err(TxError::UnknownModel(model));
        }
        if !info.models.contains(&model) {
            return Err(TxError::ModelNotServed { provider, model });
        }
        Ok(())
    }

    /// How a settlement paying `delta` on a channel for `model` divides, after
    /// checking that no balance would overflow. Writes nothing.
    pub(crate) fn settlement_split(
        &self,
        provider: AccountId,
        model: ModelId,
        delta: Amount,
    ) -> Result<SettlementSplit, TxError> {
        let entry = self
            .models
            .get(&model)
            .ok_or(TxError::UnknownModel(model))?;
        let royalty = royalty_of(delta, entry.royalty_ppm);
        let split = SettlementSplit {
            provider,
            to_provider: delta - royalty,
            owner: entry.owner,
            royalty,
        };
        if split.owner == provider {
            self.credit_room(&provider, delta)?;
        } else {
            self.credit_room(&provider, split.to_provider)?;
            self.credit_room(&split.owner, split.royalty)?;
        }
        Ok(split)
    }

    /// Pay a checked split and record both payments as earnings.
    pub(crate) fn pay_settlement(&mut self, split: SettlementSplit) {
        self.accounts.entry(split.provider).or_default().balance += split.to_provider;
        self.accounts.entry(split.owner).or_default().balance += split.royalty;
        let provider = self.earnings.entry(split.provider).or_default();
        provider.channels = provider
            .channels
            .saturating_add(u128::from(split.to_provider));
        if split.royalty > 0 {
            let owner = self.earnings.entry(split.owner).or_default();
            owner.royalties = owner.royalties.saturating_add(u128::from(split.royalty));
        }
    }

    fn credit_room(&self, to: &AccountId, amount: Amount) -> Result<(), TxError> {
        self.account(to)
            .balance
            .checked_add(amount)
            .map(|_| ())
            .ok_or(TxError::Overflow)
    }
}
