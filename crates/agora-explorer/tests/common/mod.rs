//! A genesis for the explorer's tests and bench, built directly so that
//! neither needs the test kit (and its llama.cpp build in release).

#![allow(dead_code)]

use agora_ledger::{Genesis, GenesisAccount, Params, State};
use agora_types::AccountId;

/// The state of a fee-free genesis of `chain` funding `accounts` with `balance` each.
pub fn genesis(chain: &str, accounts: &[AccountId], balance: u64) -> State {
    let params = Params {
        tx_fee: 0,
        model_registration_fee: 0,
        min_new_account_balance: 0,
        ..Params::default()
    };
    Genesis {
        chain_id: chain.into(),
        timestamp_ms: 0,
        params,
        accounts: accounts
            .iter()
            .map(|id| GenesisAccount { id: *id, balance })
            .collect(),
        models: Vec::new(),
    }
    .state()
    .expect("the test genesis is valid")
}
