//! A genesis funding test accounts, built in one expression instead of a
//! struct literal per test.

use agora_ledger::Params;
use agora_ledger::{Genesis, GenesisAccount, State};
use agora_types::{AccountId, Amount, Keypair, ModelEntry};

/// Builds a [`Genesis`]: default parameters unless changed, no accounts or
/// models until added.
#[derive(Clone, Debug)]
pub struct GenesisBuilder(Genesis);

impl GenesisBuilder {
    /// An empty genesis of `chain_id` with the default parameters.
    pub fn new(chain_id: &str) -> Self {
        GenesisBuilder(Genesis {
            chain_id: chain_id.into(),
            timestamp_ms: 0,
            params: Params::default(),
            accounts: Vec::new(),
            models: Vec::new(),
        })
    }

    /// Give `account` `balance` base units.
    pub fn fund(mut self, account: AccountId, balance: Amount) -> Self {
        self.0.accounts.push(GenesisAccount {
            id: account,
            balance,
        });
        self
    }

    /// Give every key's account `balance` base units.
    pub fn fund_keys<'a>(
        self,
        keys: impl IntoIterator<Item = &'a Keypair>,
        balance: Amount,
    ) -> Self {
        keys.into_iter()
            .fold(self, |g, key| g.fund(key.account(), balance))
    }

    /// Register `model` at genesis.
    pub fn model(mut self, model: ModelEntry) -> Self {
        self.0.models.push(model);
        self
    }

    /// No transaction fee, no model registration fee and no minimum balance
    /// for new accounts, so tests of other rules can use small, exact numbers
    /// (the fee rules have their own tests in `agora-ledger/tests/attacks.rs`).
    pub fn without_fees(self) -> Self {
        self.params(|p| {
            p.tx_fee = 0;
            p.model_registration_fee = 0;
            p.min_new_account_balance = 0;
        })
    }

    /// Change parameters.
    pub fn params(mut self, change: impl FnOnce(&mut Params)) -> Self {
        change(&mut self.0.params);
        self
    }

    /// The genesis.
    pub fn build(self) -> Genesis {
        self.0
    }

    /// The state at height 0; panics if the genesis is invalid.
    pub fn state(self) -> State {
        self.0.state().expect("the test genesis is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funds_registers_and_changes_params() {
        let keys = [Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32])];
        let genesis = GenesisBuilder::new("kit-test")
            .fund_keys(&keys, 500)
            .without_fees()
            .params(|p| p.min_validator_bond = 1)
            .build();
        assert_eq!(genesis.chain_id, "kit-test");
        assert_eq!(genesis.accounts.len(), 2);
        assert_eq!(genesis.accounts[1].id, keys[1].account());
        assert_eq!(genesis.params.tx_fee, 0);
        assert_eq!(genesis.params.min_new_account_balance, 0);
        assert_eq!(genesis.params.model_registration_fee, 0);
        assert_eq!(genesis.params.min_validator_bond, 1);
        let state = GenesisBuilder::new("kit-test")
            .fund(keys[0].account(), 7)
            .state();
        assert_eq!(state.account(&keys[0].account()).balance, 7);
    }
}
