//! The per-tempo reward distribution: at the first block of every epoch,
//! the emission pool is shared among the models with revealed weights in
//! proportion to the stake that revealed for each (a validator revealing for
//! k models counts 1/k of its stake in each, so registering junk models
//! gains nothing), and each model's share is split by Yuma consensus
//! (`agora_yuma::epoch`) into provider incentive, validator dividends (with
//! delegators, minus the validator's take) and the model owner's cut.
//! Everything paid leaves the pool, so supply is conserved exactly.

use std::collections::BTreeMap;

use agora_types::{no_owner, AccountId, Amount, Height, ModelId};
use agora_yuma::{epoch, YumaInput, YumaParams};

use crate::staking::PPM;
use crate::State;

/// The weights revealed for one model, by validator.
type Reveals = BTreeMap<AccountId, Vec<(AccountId, u16)>>;

impl State {
    /// Pay the emission pool out if `height` starts a new epoch.
    pub(crate) fn distribute_rewards(&mut self, height: Height) {
        let tempo = self.params.tempo_blocks;
        if tempo == 0 || height == 0 || !height.is_multiple_of(tempo) {
            return;
        }
        let reveals = std::mem::take(&mut self.markets.reveals);
        let epoch_now = height / tempo;
        // Commits older than the previous epoch can never be revealed.
        self.markets
            .commits
            .retain(|(_, _, e), _| e.saturating_add(1) >= epoch_now);
        let mut by_model: BTreeMap<ModelId, Reveals> = BTreeMap::new();
        for ((model, validator), weights) in reveals {
            by_model
                .entry(model)
                .or_default()
                .insert(validator, weights);
        }
        let market_stake = self.market_stakes(&by_model);
        let total: u128 = market_stake.values().sum();
        if total == 0 {
            return;
        }
        let pool = u128::from(self.emission_pool);
        for (model, weights) in by_model {
            let stake = market_stake.get(&model).copied().unwrap_or(0);
            // pool · stake / total ≤ pool, so it fits an Amount.
            let share = (pool * stake / total) as Amount;
            self.run_market(model, &weights, share);
        }
    }

    /// The stake behind each market: every revealing validator's stake (own
    /// bond at least `min_validator_bond`) divided equally among the models
    /// it revealed for.
    fn market_stakes(&self, by_model: &BTreeMap<ModelId, Reveals>) -> BTreeMap<ModelId, u128> {
        let mut markets_of: BTreeMap<AccountId, u128> = BTreeMap::new();
        for revealed in by_model.values() {
            for v in revealed.keys() {
                *markets_of.entry(*v).or_default() += 1;
            }
        }
        let eligible: BTreeMap<AccountId, Amount> = self.audit_candidates().into_iter().collect();
        by_model
            .iter()
            .map(|(model, revealed)| {
                let stake = revealed
                    .keys()
                    .map(|v| {
                        let stake = u128::from(eligible.get(v).copied().unwrap_or(0));
                        stake * u128::from(PPM) / markets_of[v]
                    })
                    .sum();
                (*model, stake)
            })
            .collect()
    }

    /// One model's Yuma epoch over `emission`; pays and records the result.
    fn run_market(
        &mut self,
        model: ModelId,
        revealed: &BTreeMap<AccountId, Vec<(AccountId, u16)>>,
        emission: Amount,
    ) {
        let providers: Vec<AccountId> = self
            .providers
            .values()
            .filter(|p| p.models.contains(&model))
            .map(|p| p.id)
            .collect();
        let validators: Vec<AccountId> = self.validators.keys().copied().collect();
        if providers.is_empty() || validators.is_empty() || emission == 0 {
            return;
        }
        let uid: BTreeMap<AccountId, u16> = providers
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, i as u16))
            .collect();
        let to_uids = |row: &[(AccountId, u64)]| -> Vec<(u16, u64)> {
            row.iter()
                .filter_map(|(p, x)| uid.get(p).map(|u| (*u, *x)))
                .collect()
        };
        let old_bonds = self.markets.bonds.get(&model);
        let input = YumaInput {
            n_providers: providers.len(),
            stakes: validators
                .iter()
                .map(|v| self.validators[v].total())
                .collect(),
            active: validators
                .iter()
                .map(|v| revealed.contains_key(v))
                .collect(),
            weights: validators
                .iter()
                .map(|v| {
                    revealed.get(v).map_or_else(Vec::new, |row| {
                        row.iter()
                            .filter(|(_, w)| *w > 0)
                            .filter_map(|(p, w)| uid.get(p).map(|u| (*u, *w)))
                            .collect()
                    })
                })
                .collect(),
            prev_bonds: validators
                .iter()
                .map(|v| {
                    old_bonds
                        .and_then(|b| b.get(v))
                        .map_or_else(Vec::new, |row| to_uids(row))
                })
                .collect(),
            emission,
        };
        // Inputs are built valid (distinct uids in range, matching lengths);
        // should the epoch still refuse them, the share stays in the pool.
        let Ok(out) = epoch(&YumaParams::default(), &input) else {
            return;
        };
        let owner = self.models.get(&model).map_or(no_owner(), |m| m.owner);
        for (p, amount) in providers.iter().zip(&out.provider_emission) {
            self.pay_emission(*p, *amount);
        }
        for (v, amount) in validators.iter().zip(&out.validator_emission) {
            self.pay_dividend(*v, *amount);
        }
        // A model nobody owns keeps its cut in the pool for later tempos.
        if owner != no_owner() {
            self.pay_emission(owner, out.owner_emission);
        }
        let bonds = validators
            .iter()
            .zip(&out.new_bonds)
            .filter(|(_, row)| !row.is_empty())
            .map(|(v, row)| {
                let row = row
                    .iter()
                    .map(|(u, b)| (providers[usize::from(*u)], *b))
                    .collect();
                (*v, row)
            })
            .collect();
        self.markets.bonds.insert(model, bonds);
        let consensus = providers
            .iter()
            .zip(&out.consensus)
            .map(|(p, c)| (*p, *c))
            .collect();
        self.markets.consensus.insert(model, consensus);
    }

    /// Move `amount` from the pool to `to`'s balance and emission earnings.
    fn pay_emission(&mut self, to: AccountId, amount: Amount) {
        let amount = amount.min(self.emission_pool);
        if amount == 0 {
            return;
        }
        let account = self.accounts.entry(to).or_default();
        let Some(balance) = account.balance.checked_add(amount) else {
            return; // unpayable: stays in the pool
        };
        account.balance = balance;
        self.emission_pool -= amount;
        let e = self.earnings.entry(to).or_default();
        e.emissions = e.emissions.saturating_add(u128::from(amount));
    }

    /// A validator's dividend: delegators get their stake's share of it,
    /// less the validator's take; the validator keeps the rest.
    fn pay_dividend(&mut self, validator: AccountId, amount: Amount) {
        let Some(v) = self.validators.get(&validator) else {
            return;
        };
        let (delegated, total, take_ppm) = (v.delegated, v.total(), v.take_ppm);
        let to_delegators = mul_div(amount, delegated, total);
        let take = mul_div(to_delegators, u64::from(take_ppm.min(PPM)), u64::from(PPM));
        let net = to_delegators - take;
        let delegations: Vec<(AccountId, Amount)> = self
            .delegations
            .iter()
            .filter(|((_, to), _)| *to == validator)
            .map(|((from, _), a)| (*from, *a))
            .collect();
        let mut paid = 0;
        for (delegator, stake) in delegations {
            let cut = mul_div(net, stake, delegated);
            self.pay_emission(delegator, cut);
            paid += cut;
        }
        self.pay_emission(validator, amount - paid);
    }
}

/// `floor(a × b / c)` (0 when `c` is 0); at most `a` whenever `b ≤ c`.
fn mul_div(a: Amount, b: Amount, c: Amount) -> Amount {
    if c == 0 {
        return 0;
    }
    (u128::from(a) * u128::from(b) / u128::from(c)) as Amount
}
