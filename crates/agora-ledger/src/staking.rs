//! Staking: validators bond their own stake and accept delegations, keeping a
//! take rate of what delegations earn; unbonding stake waits a fixed number
//! of blocks before it returns, and stays slashable until then.

use std::collections::BTreeMap;

use agora_types::{AccountId, Amount, Height};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{State, TxError};

/// Parts per million: the unit of take rates and slash fractions.
pub const PPM: u32 = 1_000_000;

/// A validator's bonded stake.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Validator {
    /// The validator's own bonded stake.
    pub self_stake: Amount,
    /// Stake delegated to it by others.
    pub delegated: Amount,
    /// Share of delegators' rewards the validator keeps, in parts per million.
    pub take_ppm: u32,
}

impl Validator {
    /// Everything bonded to this validator.
    pub fn total(&self) -> Amount {
        self.self_stake.saturating_add(self.delegated)
    }
}

/// Stake on its way back to its owner.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Unbonding {
    /// Who gets it back.
    pub owner: AccountId,
    /// The validator it was bonded to (slashes of that validator reach it).
    pub validator: AccountId,
    /// Base units.
    pub amount: Amount,
    /// Height from which it is released.
    pub release_at: Height,
}

/// What a slash took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slashed {
    /// From bonded stake (own and delegated).
    pub bonded: Amount,
    /// From stake still unbonding.
    pub unbonding: Amount,
}

pub(crate) fn fraction(amount: Amount, ppm: u32) -> Amount {
    // amount * ppm / PPM fits in u128 and the result is at most `amount`.
    (u128::from(amount) * u128::from(ppm.min(PPM)) / u128::from(PPM)) as Amount
}

impl State {
    /// Validators that may audit and sit on dispute committees, with the
    /// stake their draws are weighted by: own stake at least
    /// `min_validator_bond` (delegations add weight, never eligibility).
    pub fn audit_candidates(&self) -> Vec<(AccountId, Amount)> {
        let min = self.params.min_validator_bond.max(1);
        self.validators
            .iter()
            .filter(|(_, v)| v.self_stake >= min)
            .map(|(id, v)| (*id, v.total()))
            .collect()
    }

    /// Bonded stake of every validator, by account.
    pub fn validator_stakes(&self) -> BTreeMap<AccountId, Amount> {
        self.validators
            .iter()
            .map(|(id, v)| (*id, v.total()))
            .collect()
    }

    pub(crate) fn bond_validator(
        &mut self,
        from: AccountId,
        amount: Amount,
        take_ppm: u32,
    ) -> Result<(), TxError> {
        if amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        if take_ppm > PPM {
            return Err(TxError::InvalidField {
                field: "take_ppm",
                reason: format!("{take_ppm} is more than {PPM} (100%)"),
            });
        }
        let current = self.validators.get(&from);
        let self_stake = current
            .map_or(0, |v| v.self_stake)
            .checked_add(amount)
            .ok_or(TxError::Overflow)?;
        if self_stake < self.params.min_validator_bond {
            return Err(TxError::BondTooLow {
                minimum: self.params.min_validator_bond,
                got: self_stake,
            });
        }
        self.debit(from, amount)?;
        let entry = self.validators.entry(from).or_insert(Validator {
            self_stake: 0,
            delegated: 0,
            take_ppm,
        });
        entry.self_stake = self_stake;
        entry.take_ppm = take_ppm;
        Ok(())
    }

    pub(crate) fn delegate(
        &mut self,
        from: AccountId,
        validator: AccountId,
        amount: Amount,
    ) -> Result<(), TxError> {
        if amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        let v = self
            .validators
            .get(&validator)
            .ok_or(TxError::NotAValidator(validator))?;
        let delegated = v.delegated.checked_add(amount).ok_or(TxError::Overflow)?;
        let mine = self
            .delegations
            .get(&(from, validator))
            .copied()
            .unwrap_or(0)
            .checked_add(amount)
            .ok_or(TxError::Overflow)?;
        self.debit(from, amount)?;
        if let Some(v) = self.validators.get_mut(&validator) {
            v.delegated = delegated;
        }
        self.delegations.insert((from, validator), mine);
        Ok(())
    }

    pub(crate) fn unbond(
        &mut self,
        from: AccountId,
        validator: AccountId,
        amount: Amount,
        height: Height,
    ) -> Result<(), TxError> {
        if amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        let v = self
            .validators
            .get(&validator)
            .ok_or(TxError::NotAValidator(validator))?;
        let bonded = if from == validator {
            v.self_stake
        } else {
            self.delegations
                .get(&(from, validator))
                .copied()
                .unwrap_or(0)
        };
        if bonded < amount {
            return Err(TxError::InsufficientStake {
                needed: amount,
                bonded,
            });
        }
        if let Some(v) = self.validators.get_mut(&validator) {
            if from == validator {
                v.self_stake -= amount;
            } else {
                v.delegated -= amount;
            }
        }
        if from != validator {
            let left = bonded - amount;
            if left == 0 {
                self.delegations.remove(&(from, validator));
            } else {
                self.delegations.insert((from, validator), left);
            }
        }
        if self
            .validators
            .get(&validator)
            .is_some_and(|v| v.total() == 0)
        {
            self.validators.remove(&validator);
        }
        self.unbonding.push(Unbonding {
            owner: from,
            validator,
            amount,
            release_at: height.saturating_add(self.params.unbonding_blocks),
        });
        Ok(())
    }

    /// Return matured unbonding stake to its owners (run at the start of every block).
    pub(crate) fn release_unbonded(&mut self, height: Height) {
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unbonding)
            .into_iter()
            .partition(|u| u.release_at <= height);
        self.unbonding = waiting;
        for u in due {
            let account = self.accounts.entry(u.owner).or_default();
            account.balance = account.balance.saturating_add(u.amount);
        }
    }

    /// Burn `ppm` of everything bonded to `validator` and of everything still
    /// unbonding from it (unbonding does not escape a slash). Pure; the
    /// verification rules decide when it is called.
    pub fn slash_validator(&mut self, validator: &AccountId, ppm: u32) -> Slashed {
        let mut slashed = Slashed::default();
        if let Some(v) = self.validators.get_mut(validator) {
            let own = fraction(v.self_stake, ppm);
            v.self_stake -= own;
            slashed.bonded += own;
        }
        let mut delegated_cut = 0;
        for ((_, to), amount) in self.delegations.iter_mut() {
            if to == validator {
                let cut = fraction(*amount, ppm);
                *amount -= cut;
                delegated_cut += cut;
            }
        }
        self.delegations.retain(|_, amount| *amount > 0);
        if let Some(v) = self.validators.get_mut(validator) {
            v.delegated -= delegated_cut;
            slashed.bonded += delegated_cut;
            if v.total() == 0 {
                self.validators.remove(validator);
            }
        }
        for u in self
            .unbonding
            .iter_mut()
            .filter(|u| u.validator == *validator)
        {
            let cut = fraction(u.amount, ppm);
            u.amount -= cut;
            slashed.unbonding += cut;
        }
        self.unbonding.retain(|u| u.amount > 0);
        self.burned = self
            .burned
            .saturating_add(u128::from(slashed.bonded) + u128::from(slashed.unbonding));
        slashed
    }
}
