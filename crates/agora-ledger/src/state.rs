//! The ledger state and the transaction rules.

use std::collections::BTreeMap;

use agora_types::merkle::{self, MerkleProof};
use agora_types::network::{check_public_host, is_development_chain};
use agora_types::{
    codec, AccountId, Amount, Dispute, Earnings, Hash32, Height, ModelEntry, ModelId, Params,
    ProviderAudits, ProviderInfo, ReceiptBatch, SignedTransaction, TxKind,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::channels::Channel;
use crate::committee::{Committee, ValidatorEndpoint};
use crate::staking::{Unbonding, Validator};
use crate::weights::Markets;
use crate::TxError;

/// Merkle key of the chain metadata leaf.
const META_KEY: &[u8] = b"meta";
/// Key prefix of account leaves.
const ACCOUNT_PREFIX: u8 = 1;
/// Key prefix of model registry leaves.
const MODEL_PREFIX: u8 = 2;
/// Key prefix of provider registry leaves.
const PROVIDER_PREFIX: u8 = 3;
/// Key prefix of payment channel leaves.
const CHANNEL_PREFIX: u8 = 4;
/// Key prefix of validator leaves.
const VALIDATOR_PREFIX: u8 = 5;
/// Key prefix of delegation leaves.
const DELEGATION_PREFIX: u8 = 6;
/// Key of the (single) unbonding queue leaf.
const UNBONDING_PREFIX: u8 = 7;
/// Key prefix of receipt batch leaves.
const BATCH_PREFIX: u8 = 8;
/// Key prefix of verdict leaves.
const VERDICT_PREFIX: u8 = 9;
/// Key prefix of dispute leaves.
const DISPUTE_PREFIX: u8 = 10;
/// Key prefix of provider audit record leaves.
const PROVIDER_AUDITS_PREFIX: u8 = 11;
/// Key prefix of earnings leaves.
const EARNINGS_PREFIX: u8 = 16;
/// Key of the (single) weights-and-bonds leaf.
const MARKETS_PREFIX: u8 = 17;
/// Key prefix of validator endpoint leaves.
const ENDPOINT_PREFIX: u8 = 18;
/// Key of the (single) committee leaf.
const COMMITTEE_PREFIX: u8 = 19;

fn entry_key(prefix: u8, id: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(prefix);
    key.extend_from_slice(id);
    key
}

/// The Merkle key of an account's leaf (what a light client hashes with the account).
pub fn account_key(id: &AccountId) -> Vec<u8> {
    entry_key(ACCOUNT_PREFIX, &id.0)
}
const MAX_ENDPOINT_LEN: usize = 256;
const MAX_NAME_LEN: usize = 128;
const MAX_MODELS_PER_PROVIDER: usize = 64;

/// Balance and replay counter of one account.
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
pub struct Account {
    /// Spendable base units.
    pub balance: Amount,
    /// Nonce the next transaction from this account must carry.
    pub nonce: u64,
}

/// The whole ledger state after some block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct State {
    /// Chain this state belongs to.
    pub chain_id: String,
    /// Height of the last applied block (0 at genesis).
    pub height: Height,
    /// Id of the last applied block (the genesis hash at height 0).
    pub last_block_id: Hash32,
    /// Timestamp of the last applied block.
    pub last_timestamp_ms: u64,
    /// Chain parameters.
    pub params: Params,
    /// Accounts by key.
    pub accounts: BTreeMap<AccountId, Account>,
    /// Model registry by content hash.
    pub models: BTreeMap<ModelId, ModelEntry>,
    /// Provider registry by account.
    pub providers: BTreeMap<AccountId, ProviderInfo>,
    /// Open payment channels by id.
    pub channels: BTreeMap<Hash32, Channel>,
    /// Validators' bonded stake by account.
    pub validators: BTreeMap<AccountId, Validator>,
    /// Delegated stake by (delegator, validator).
    pub delegations: BTreeMap<(AccountId, AccountId), Amount>,
    /// Stake on its way back, in the order it started unbonding.
    pub unbonding: Vec<Unbonding>,
    /// Everything destroyed by slashing so far.
    pub burned: u128,
    /// Emission minted but not yet paid out by the reward distribution.
    pub emission_pool: Amount,
    /// Everything minted by emission so far (supply + burned = genesis + emitted).
    pub emitted: u128,
    /// Receipt batches still inside their audit window, by id.
    pub batches: BTreeMap<Hash32, ReceiptBatch>,
    /// Verdicts on live batches: (batch, leaf index, auditor) -> passed.
    pub verdicts: BTreeMap<(Hash32, u64, AccountId), bool>,
    /// Open disputes by id.
    pub disputes: BTreeMap<Hash32, Dispute>,
    /// Audit record of every provider ever audited, by account.
    pub provider_audits: BTreeMap<AccountId, ProviderAudits>,
    /// What each account has earned since genesis, by source.
    pub earnings: BTreeMap<AccountId, Earnings>,
    /// Weight commitments, reveals, bonds and consensus per model.
    pub markets: Markets,
    /// Consensus endpoints announced by validators, by staking account.
    pub validator_endpoints: BTreeMap<AccountId, ValidatorEndpoint>,
    /// The consensus committee elected at the last committee epoch boundary.
    pub committee: Committee,
    /// Receipt batches created in the block being applied (height, count):
    /// what `max_batches_per_block` counts.
    pub batches_in_block: (Height, u32),
}

impl State {
    /// Commitment to the state a block header carries: the Merkle root over
    /// [`State::leaves`] (every field except `last_block_id`, which depends on
    /// the root), so one entry can be proven against it.
    pub fn root(&self) -> Hash32 {
        merkle::root(&self.leaves())
    }

    /// The state's entries as Merkle leaves, in a fixed order: the chain's
    /// metadata first, then accounts, models and providers, each by key.
    pub fn leaves(&self) -> Vec<Hash32> {
        let meta = codec::encode(&(
            &self.chain_id,
            self.height,
            self.last_timestamp_ms,
            &self.params,
            self.burned,
            self.emission_pool,
            self.emitted,
        ));
        let mut out =
            Vec::with_capacity(1 + self.accounts.len() + self.models.len() + self.providers.len());
        out.push(merkle::leaf_hash(META_KEY, &meta));
        out.extend(
            self.accounts
                .iter()
                .map(|(id, a)| merkle::leaf_hash(&account_key(id), &codec::encode(a))),
        );
        out.extend(
            self.models.iter().map(|(id, m)| {
                merkle::leaf_hash(&entry_key(MODEL_PREFIX, &id.0), &codec::encode(m))
            }),
        );
        out.extend(self.providers.iter().map(|(id, p)| {
            merkle::leaf_hash(&entry_key(PROVIDER_PREFIX, &id.0), &codec::encode(p))
        }));
        out.extend(self.channels.iter().map(|(id, c)| {
            merkle::leaf_hash(&entry_key(CHANNEL_PREFIX, &id.0), &codec::encode(c))
        }));
        out.extend(self.validators.iter().map(|(id, v)| {
            merkle::leaf_hash(&entry_key(VALIDATOR_PREFIX, &id.0), &codec::encode(v))
        }));
        out.extend(self.delegations.iter().map(|((from, to), amount)| {
            let mut key = entry_key(DELEGATION_PREFIX, &from.0);
            key.extend_from_slice(&to.0);
            merkle::leaf_hash(&key, &codec::encode(amount))
        }));
        out.push(merkle::leaf_hash(
            &[UNBONDING_PREFIX],
            &codec::encode(&self.unbonding),
        ));
        out.extend(
            self.batches.iter().map(|(id, b)| {
                merkle::leaf_hash(&entry_key(BATCH_PREFIX, &id.0), &codec::encode(b))
            }),
        );
        out.extend(
            self.verdicts
                .iter()
                .map(|((batch, index, auditor), passed)| {
                    let mut key = entry_key(VERDICT_PREFIX, &batch.0);
                    key.extend_from_slice(&index.to_le_bytes());
                    key.extend_from_slice(&auditor.0);
                    merkle::leaf_hash(&key, &codec::encode(passed))
                }),
        );
        out.extend(self.disputes.iter().map(|(id, d)| {
            merkle::leaf_hash(&entry_key(DISPUTE_PREFIX, &id.0), &codec::encode(d))
        }));
        out.extend(self.provider_audits.iter().map(|(id, a)| {
            merkle::leaf_hash(&entry_key(PROVIDER_AUDITS_PREFIX, &id.0), &codec::encode(a))
        }));
        out.extend(self.earnings.iter().map(|(id, e)| {
            merkle::leaf_hash(&entry_key(EARNINGS_PREFIX, &id.0), &codec::encode(e))
        }));
        out.push(merkle::leaf_hash(
            &[MARKETS_PREFIX],
            &codec::encode(&self.markets),
        ));
        out.extend(self.validator_endpoints.iter().map(|(id, e)| {
            merkle::leaf_hash(&entry_key(ENDPOINT_PREFIX, &id.0), &codec::encode(e))
        }));
        out.push(merkle::leaf_hash(
            &[COMMITTEE_PREFIX],
            &codec::encode(&self.committee),
        ));
        out
    }

    /// Proof of `id`'s account against [`State::root`], or `None` if the
    /// account has never existed (absence is not provable with this tree).
    pub fn prove_account(&self, id: &AccountId) -> Option<(Account, MerkleProof)> {
        let position = self.accounts.keys().position(|k| k == id)?;
        let proof = MerkleProof::new(&self.leaves(), 1 + position)?;
        Some((self.accounts[id], proof))
    }

    /// An account, or the empty account if it never received anything.
    pub fn account(&self, id: &AccountId) -> Account {
        self.accounts.get(id).copied().unwrap_or_default()
    }

    /// Every base unit in existence: balances plus locked stake.
    pub fn total_supply(&self) -> u128 {
        let balances: u128 = self.accounts.values().map(|a| u128::from(a.balance)).sum();
        let stakes: u128 = self.providers.values().map(|p| u128::from(p.stake)).sum();
        let escrow: u128 = self.channels.values().map(|c| u128::from(c.escrow())).sum();
        let bonded: u128 = self
            .validators
            .values()
            .map(|v| u128::from(v.total()))
            .sum();
        let unbonding: u128 = self.unbonding.iter().map(|u| u128::from(u.amount)).sum();
        balances + stakes + escrow + bonded + unbonding + u128::from(self.emission_pool)
    }

    /// Look a model up by its registry name.
    pub fn model_by_name(&self, name: &str) -> Option<&ModelEntry> {
        self.models.values().find(|m| m.name == name)
    }

    fn check_chain(&self, stx: &SignedTransaction) -> Result<(), TxError> {
        if stx.tx.chain_id != self.chain_id {
            return Err(TxError::WrongChain {
                expected: self.chain_id.clone(),
                got: stx.tx.chain_id.clone(),
            });
        }
        Ok(())
    }

    /// Apply one transaction at `height`. On error nothing changes.
    pub fn apply_tx(&mut self, stx: &SignedTransaction, height: Height) -> Result<(), TxError> {
        self.check_chain(stx)?;
        stx.verify_signature()
            .map_err(|_| TxError::BadSignature(stx.tx.from))?;
        self.apply_authenticated(stx, height)
    }

    /// [`State::apply_tx`] for a transaction whose signature the caller has
    /// already verified, such as a mempool re-checking what it admitted after
    /// each block: the signature is most of the cost of applying a transfer.
    pub fn apply_tx_signature_verified(
        &mut self,
        stx: &SignedTransaction,
        height: Height,
    ) -> Result<(), TxError> {
        self.check_chain(stx)?;
        self.apply_authenticated(stx, height)
    }

    /// The rest of applying a transaction once its chain and signature are checked.
    fn apply_authenticated(
        &mut self,
        stx: &SignedTransaction,
        height: Height,
    ) -> Result<(), TxError> {
        let tx = &stx.tx;
        let sender = self.account(&tx.from);
        if tx.nonce != sender.nonce {
            return Err(TxError::BadNonce {
                account: tx.from,
                expected: sender.nonce,
                got: tx.nonce,
            });
        }
        // The fee is taken first, so the transaction must afford it on top of
        // what it moves; if the transaction fails, the fee is given back.
        let fee = self.params.tx_fee;
        if sender.balance < fee {
            return Err(TxError::CannotPayFee {
                fee,
                available: sender.balance,
            });
        }
        self.accounts.entry(tx.from).or_default().balance -= fee;
        if let Err(e) = self.dispatch(stx, height) {
            self.accounts.entry(tx.from).or_default().balance += fee;
            return Err(e);
        }
        self.burned = self.burned.saturating_add(u128::from(fee));
        self.accounts.entry(tx.from).or_default().nonce += 1;
        Ok(())
    }

    /// Apply the transaction's own effect. Every branch validates fully
    /// before its first write, so an error leaves no trace.
    fn dispatch(&mut self, stx: &SignedTransaction, height: Height) -> Result<(), TxError> {
        let tx = &stx.tx;
        match &tx.kind {
            TxKind::Transfer { to, amount } => self.transfer(tx.from, *to, *amount)?,
            TxKind::RegisterModel { model } => self.register_model(tx.from, model)?,
            TxKind::RegisterProvider {
                endpoint,
                models,
                price,
                stake,
            } => {
                let info = ProviderInfo {
                    id: tx.from,
                    endpoint: endpoint.clone(),
                    models: models.clone(),
                    price: *price,
                    stake: *stake,
                    registered_at: height,
                };
                self.register_provider(info)?
            }
            TxKind::DeregisterProvider => self.deregister_provider(tx.from)?,
            TxKind::OpenChannel {
                provider,
                model,
                deposit,
            } => self.open_channel(tx.from, tx.nonce, *provider, *model, *deposit)?,
            TxKind::TopUpChannel { channel, amount } => {
                self.top_up_channel(tx.from, channel, *amount)?
            }
            TxKind::SettleChannel { voucher } => {
                self.settle_channel(tx.from, tx.nonce, voucher, height)?
            }
            TxKind::CloseChannel { channel } => self.close_channel(tx.from, channel, height)?,
            TxKind::FinishClose { channel } => self.finish_close(tx.from, channel, height)?,
            TxKind::BondValidator { amount, take_ppm } => {
                self.bond_validator(tx.from, *amount, *take_ppm)?
            }
            TxKind::AnnounceValidator {
                consensus_key,
                p2p_addr,
            } => self.announce_validator(tx.from, *consensus_key, p2p_addr)?,
            TxKind::Delegate { validator, amount } => {
                self.delegate(tx.from, *validator, *amount)?
            }
            TxKind::Unbond { validator, amount } => {
                self.unbond(tx.from, *validator, *amount, height)?
            }
            TxKind::CommitReceipts { model, root, count } => {
                self.commit_receipts(tx.from, tx.nonce, *model, *root, *count, height)?
            }
            TxKind::SubmitVerdict {
                batch,
                index,
                leaf,
                passed,
                evidence,
            } => self.submit_verdict(
                tx.from,
                crate::audits::Verdict {
                    batch: *batch,
                    index: *index,
                    leaf: *leaf,
                    passed: *passed,
                    evidence: *evidence,
                },
                height,
            )?,
            TxKind::VoteDispute { dispute, agree } => {
                self.vote_dispute(tx.from, dispute, *agree)?
            }
            TxKind::CommitWeights { model, hash } => {
                self.commit_weights(tx.from, *model, *hash, height)?
            }
            TxKind::RevealWeights {
                model,
                weights,
                salt,
            } => self.reveal_weights(tx.from, *model, weights, salt, height)?,
        }
        Ok(())
    }

    fn debit_check(&self, from: AccountId, amount: Amount) -> Result<(), TxError> {
        let available = self.account(&from).balance;
        if available < amount {
            return Err(TxError::InsufficientBalance {
                account: from,
                needed: amount,
                available,
            });
        }
        Ok(())
    }

    fn transfer(&mut self, from: AccountId, to: AccountId, amount: Amount) -> Result<(), TxError> {
        if amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        self.debit_check(from, amount)?;
        let minimum = self.params.min_new_account_balance;
        if from != to && !self.accounts.contains_key(&to) && amount < minimum {
            return Err(TxError::NewAccountTooSmall {
                minimum,
                got: amount,
            });
        }
        if from != to {
            self.account(&to)
                .balance
                .checked_add(amount)
                .ok_or(TxError::Overflow)?;
            self.accounts.entry(from).or_default().balance -= amount;
            self.accounts.entry(to).or_default().balance += amount;
        }
        Ok(())
    }

    fn register_model(&mut self, sender: AccountId, model: &ModelEntry) -> Result<(), TxError> {
        self.check_model_terms(sender, model)?;
        check_text("model.name", &model.name, MAX_NAME_LEN)?;
        check_text("model.architecture", &model.architecture, MAX_NAME_LEN)?;
        check_text("model.quantization", &model.quantization, MAX_NAME_LEN)?;
        check_text("model.license", &model.license, MAX_NAME_LEN)?;
        if self.models.contains_key(&model.id) {
            return Err(TxError::ModelExists(model.id));
        }
        if self.model_by_name(&model.name).is_some() {
            return Err(TxError::ModelNameTaken(model.name.clone()));
        }
        self.models.insert(model.id, model.clone());
        Ok(())
    }

    fn register_provider(&mut self, info: ProviderInfo) -> Result<(), TxError> {
        check_endpoint(&info.endpoint)?;
        // Every gateway and validator dials this endpoint: outside development
        // chains it must name a public host, never the dialler's own network.
        if !is_development_chain(&self.chain_id) {
            check_public_host(&info.endpoint).map_err(|e| TxError::InvalidField {
                field: "endpoint",
                reason: format!("must be a public host: {e}"),
            })?;
        }
        if info.models.is_empty() || info.models.len() > MAX_MODELS_PER_PROVIDER {
            return Err(TxError::InvalidField {
                field: "models",
                reason: format!("must list 1 to {MAX_MODELS_PER_PROVIDER} models"),
            });
        }
        if let Some(unknown) = info.models.iter().find(|m| !self.models.contains_key(m)) {
            return Err(TxError::UnknownModel(*unknown));
        }
        if info.stake < self.params.min_provider_stake {
            return Err(TxError::StakeTooLow {
                minimum: self.params.min_provider_stake,
                got: info.stake,
            });
        }
        self.check_collateral(&info)?;
        // Re-registration first releases the old stake, then locks the new one;
        // while audits or disputes are open the stake may not shrink.
        let old_stake = self.providers.get(&info.id).map_or(0, |p| p.stake);
        if info.stake < old_stake {
            self.check_collateral_released(&info.id)?;
        }
        let available = self
            .account(&info.id)
            .balance
            .checked_add(old_stake)
            .ok_or(TxError::Overflow)?;
        if available < info.stake {
            return Err(TxError::InsufficientBalance {
                account: info.id,
                needed: info.stake,
                available,
            });
        }
        self.accounts.entry(info.id).or_default().balance = available - info.stake;
        self.providers.insert(info.id, info);
        Ok(())
    }

    fn deregister_provider(&mut self, id: AccountId) -> Result<(), TxError> {
        let stake = self
            .providers
            .get(&id)
            .ok_or(TxError::NotAProvider(id))?
            .stake;
        self.check_collateral_released(&id)?;
        self.account(&id)
            .balance
            .checked_add(stake)
            .ok_or(TxError::Overflow)?;
        self.providers.remove(&id);
        self.accounts.entry(id).or_default().balance += stake;
        Ok(())
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), TxError> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(TxError::InvalidField {
            field,
            reason: format!("must be 1 to {max} bytes of printable text"),
        });
    }
    Ok(())
}

fn check_endpoint(endpoint: &str) -> Result<(), TxError> {
    check_text("endpoint", endpoint, MAX_ENDPOINT_LEN)?;
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or("");
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(TxError::InvalidField {
            field: "endpoint",
            reason: "must be an http:// or https:// URL".into(),
        });
    }
    Ok(())
}
