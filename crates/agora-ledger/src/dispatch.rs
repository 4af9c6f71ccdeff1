//! Applying one transaction: the chain and signature checks, the nonce, the
//! fee (taken first, given back on failure, burned on success), and the
//! dispatch of each transaction kind to the rule that owns it.

use agora_types::{Height, ProviderInfo, SignedTransaction, TxKind};

use crate::{State, TxError};

impl State {
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
                replayable,
            } => {
                let info = ProviderInfo {
                    id: tx.from,
                    endpoint: endpoint.clone(),
                    models: models.clone(),
                    price: *price,
                    stake: *stake,
                    registered_at: height,
                    replayable: *replayable,
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
                possession,
            } => self.announce_validator(tx.from, *consensus_key, p2p_addr, possession)?,
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
            TxKind::RegisterDataset { dataset } => self.register_dataset(tx.from, dataset)?,
            TxKind::RegisterAlgorithm { algorithm } => {
                self.register_algorithm(tx.from, algorithm)?
            }
            TxKind::OpenDataJob {
                dataset,
                algorithm,
                host,
                params_hash,
                max_fuel,
            } => self.open_data_job(
                tx.from,
                tx.nonce,
                crate::data::JobOrder {
                    dataset: *dataset,
                    algorithm: *algorithm,
                    host: *host,
                    params_hash: *params_hash,
                    max_fuel: *max_fuel,
                },
                height,
            )?,
            TxKind::SettleDataJobs { receipts } => {
                self.settle_data_jobs(tx.from, tx.nonce, receipts, height)?
            }
            TxKind::CancelDataJob { job } => self.cancel_data_job(tx.from, job, height)?,
            TxKind::ReportDataEquivocation { first, second } => {
                self.report_data_equivocation(tx.from, first, second)?
            }
            TxKind::RegisterAgent { profile, stake } => {
                self.register_agent(tx.from, profile, *stake, height)?
            }
            TxKind::UpdateAgent { sequence, profile } => {
                self.update_agent(tx.from, *sequence, profile, height)?
            }
            TxKind::AgentHeartbeat => self.agent_heartbeat(tx.from, height)?,
            TxKind::DeregisterAgent => self.deregister_agent(tx.from)?,
            TxKind::AnchorAgentLog { count, root, head } => self.anchor_agent_log(
                tx.from,
                crate::agent::AnchorOrder {
                    count: *count,
                    root: *root,
                    head: *head,
                },
                height,
            )?,
            TxKind::PayAgent {
                agent,
                amount,
                reference,
            } => self.pay_agent(tx.from, tx.nonce, *agent, *amount, *reference, height)?,
            TxKind::GiveFeedback {
                payment,
                score,
                tag,
            } => self.give_feedback(tx.from, *payment, *score, tag, height)?,
            TxKind::RevokeFeedback { payment } => self.revoke_feedback(tx.from, *payment)?,
            TxKind::RequestValidation { batch, index } => {
                self.request_validation(tx.from, *batch, *index, height)?
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
}
