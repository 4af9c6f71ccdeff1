//! The agent registry: identities that bond stake and announce endpoints,
//! capabilities and models; heartbeats that keep them listed; anchors of
//! their action logs that can only extend what earlier anchors fixed; and
//! a reputation fed only by clients who paid the agent on chain (one
//! feedback per payment, never from the agent itself, revocable by its
//! author).

use std::collections::BTreeSet;

use agora_types::agent::agent_payment_id;
use agora_types::{
    AccountId, AgentEntry, AgentPayment, AgentProfile, Amount, Feedback, Hash32, Height, LogAnchor,
    Reputation,
};

use crate::registry::{check_endpoint, check_text};
use crate::{State, TxError};

/// An `AnchorAgentLog` transaction's fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AnchorOrder {
    pub(crate) count: u64,
    pub(crate) root: Hash32,
    pub(crate) head: Hash32,
}

/// A profile list (keyed by `items`) holds at most `max` entries, none twice.
fn check_distinct<T: Ord>(
    field: &'static str,
    items: impl ExactSizeIterator<Item = T>,
    max: usize,
) -> Result<(), TxError> {
    let len = items.len();
    if len > max || items.collect::<BTreeSet<_>>().len() != len {
        return Err(TxError::InvalidField {
            field,
            reason: format!("at most {max} distinct entries"),
        });
    }
    Ok(())
}

impl State {
    /// Check a profile against `[params.agents]` and the model registry.
    fn check_profile(&self, profile: &AgentProfile) -> Result<(), TxError> {
        let p = &self.params.agents;
        let (max_list, max_text) = (p.max_list as usize, p.max_text_bytes as usize);
        check_text("agent.name", &profile.name, max_text)?;
        let urls = profile.endpoints.iter().map(|e| &e.url);
        check_distinct("agent.endpoints", urls, max_list)?;
        for endpoint in &profile.endpoints {
            check_endpoint(&endpoint.url)?;
            check_text("agent.endpoints.protocol", &endpoint.protocol, max_text)?;
        }
        check_distinct("agent.capabilities", profile.capabilities.iter(), max_list)?;
        for capability in &profile.capabilities {
            check_text("agent.capabilities", capability, max_text)?;
        }
        check_distinct("agent.models", profile.models.iter(), max_list)?;
        if let Some(model) = profile.models.iter().find(|m| !self.models.contains_key(m)) {
            return Err(TxError::UnknownModel(*model));
        }
        Ok(())
    }

    /// `RegisterAgent`.
    pub(crate) fn register_agent(
        &mut self,
        sender: AccountId,
        profile: &AgentProfile,
        stake: Amount,
        height: Height,
    ) -> Result<(), TxError> {
        if self.agents.contains_key(&sender) {
            return Err(TxError::AgentExists(sender));
        }
        self.check_profile(profile)?;
        let min = self.params.agents.min_stake;
        if stake < min {
            return Err(TxError::InvalidField {
                field: "stake",
                reason: format!("an agent bonds at least {min}"),
            });
        }
        self.debit(sender, stake)?;
        let ttl = self.params.agents.heartbeat_ttl_blocks;
        self.agents.insert(
            sender,
            AgentEntry {
                id: sender,
                profile: profile.clone(),
                stake,
                sequence: 0,
                registered_at: height,
                expires_at: height.saturating_add(ttl),
                anchors: Vec::new(),
                reputation: Reputation::default(),
            },
        );
        Ok(())
    }

    /// The sender's agent, or [`TxError::UnknownAgent`].
    fn own_agent(&mut self, sender: &AccountId) -> Result<&mut AgentEntry, TxError> {
        self.agents
            .get_mut(sender)
            .ok_or(TxError::UnknownAgent(*sender))
    }

    /// `UpdateAgent`.
    pub(crate) fn update_agent(
        &mut self,
        sender: AccountId,
        sequence: u64,
        profile: &AgentProfile,
        height: Height,
    ) -> Result<(), TxError> {
        self.check_profile(profile)?;
        let ttl = self.params.agents.heartbeat_ttl_blocks;
        let agent = self.own_agent(&sender)?;
        let expected = agent.sequence + 1;
        if sequence != expected {
            return Err(TxError::AgentSequence {
                expected,
                got: sequence,
            });
        }
        agent.sequence = sequence;
        agent.profile = profile.clone();
        agent.expires_at = height.saturating_add(ttl);
        Ok(())
    }

    /// `AgentHeartbeat`.
    pub(crate) fn agent_heartbeat(
        &mut self,
        sender: AccountId,
        height: Height,
    ) -> Result<(), TxError> {
        let ttl = self.params.agents.heartbeat_ttl_blocks;
        self.own_agent(&sender)?.expires_at = height.saturating_add(ttl);
        Ok(())
    }

    /// `DeregisterAgent`: the entry goes, its stake comes back. Feedback
    /// and payments stay (they are the clients' history, not the agent's).
    pub(crate) fn deregister_agent(&mut self, sender: AccountId) -> Result<(), TxError> {
        let agent = self
            .agents
            .remove(&sender)
            .ok_or(TxError::UnknownAgent(sender))?;
        let account = self.accounts.entry(sender).or_default();
        account.balance = account.balance.saturating_add(agent.stake);
        Ok(())
    }

    /// `AnchorAgentLog`: a new anchor must cover more entries than the last
    /// (an anchor over the same count must repeat it: nothing to add), and
    /// at most `max_log_anchors` are kept per agent.
    pub(crate) fn anchor_agent_log(
        &mut self,
        sender: AccountId,
        order: AnchorOrder,
        height: Height,
    ) -> Result<(), TxError> {
        let max = self.params.agents.max_log_anchors as usize;
        let agent = self.own_agent(&sender)?;
        if order.count == 0 {
            return Err(TxError::BadAnchor(
                "an anchor covers at least one entry".into(),
            ));
        }
        if let Some(last) = agent.anchors.last() {
            if order.count <= last.count {
                return Err(TxError::BadAnchor(format!(
                    "the last anchor already covers {} entries; a new one must cover more",
                    last.count
                )));
            }
        }
        if agent.anchors.len() >= max {
            return Err(TxError::BadAnchor(format!(
                "an agent records at most {max} anchors"
            )));
        }
        agent.anchors.push(LogAnchor {
            count: order.count,
            root: order.root,
            head: order.head,
            height,
        });
        Ok(())
    }

    /// `PayAgent`.
    pub(crate) fn pay_agent(
        &mut self,
        payer: AccountId,
        nonce: u64,
        agent: AccountId,
        amount: Amount,
        reference: Hash32,
        height: Height,
    ) -> Result<(), TxError> {
        if payer == agent {
            return Err(TxError::FeedbackRefused("an agent cannot pay itself"));
        }
        if !self.agents.contains_key(&agent) {
            return Err(TxError::UnknownAgent(agent));
        }
        let min = self.params.agents.min_payment;
        if amount < min {
            return Err(TxError::InvalidField {
                field: "amount",
                reason: format!("a payment to an agent is at least {min}"),
            });
        }
        self.debit(payer, amount)?;
        let account = self.accounts.entry(agent).or_default();
        account.balance = account.balance.saturating_add(amount);
        let entry = self.agents.get_mut(&agent).expect("checked above");
        entry.reputation.paid = entry.reputation.paid.saturating_add(u128::from(amount));
        let id = agent_payment_id(&payer, nonce);
        self.agent_payments.insert(
            id,
            AgentPayment {
                id,
                payer,
                agent,
                amount,
                reference,
                height,
            },
        );
        Ok(())
    }

    /// `GiveFeedback`: only the payer of a live, unrated payment, on an
    /// agent still registered.
    pub(crate) fn give_feedback(
        &mut self,
        client: AccountId,
        payment: Hash32,
        score: u8,
        tag: &str,
        height: Height,
    ) -> Result<(), TxError> {
        let paid = self
            .agent_payments
            .get(&payment)
            .ok_or(TxError::NoFeedbackRight(payment))?;
        if paid.payer != client {
            return Err(TxError::FeedbackRefused(
                "only the payer may rate what it paid for",
            ));
        }
        if score > 100 {
            return Err(TxError::InvalidField {
                field: "score",
                reason: "0 to 100".into(),
            });
        }
        check_text("tag", tag, self.params.agents.max_text_bytes as usize)?;
        let agent = paid.agent;
        let entry = self
            .agents
            .get_mut(&agent)
            .ok_or(TxError::UnknownAgent(agent))?;
        entry.reputation.count += 1;
        entry.reputation.score_sum += u64::from(score);
        self.agent_payments.remove(&payment);
        self.feedback.insert(
            payment,
            Feedback {
                payment,
                agent,
                client,
                score,
                tag: tag.to_string(),
                height,
                revoked: false,
            },
        );
        Ok(())
    }

    /// `RevokeFeedback`: its author takes it out of the agent's summary.
    pub(crate) fn revoke_feedback(
        &mut self,
        client: AccountId,
        payment: Hash32,
    ) -> Result<(), TxError> {
        let found = self
            .feedback
            .get_mut(&payment)
            .ok_or(TxError::NoFeedbackRight(payment))?;
        if found.client != client {
            return Err(TxError::FeedbackRefused(
                "only its author may revoke feedback",
            ));
        }
        if found.revoked {
            return Err(TxError::FeedbackRefused("the feedback was revoked already"));
        }
        found.revoked = true;
        let (agent, score) = (found.agent, u64::from(found.score));
        let given_at = found.height;
        // Only the registration the feedback counted towards loses it.
        if let Some(entry) = self
            .agents
            .get_mut(&agent)
            .filter(|e| e.registered_at <= given_at)
        {
            entry.reputation.count -= 1;
            entry.reputation.score_sum -= score;
            entry.reputation.revoked += 1;
        }
        Ok(())
    }

    /// Drop payments whose feedback window closed (run at every block's start).
    pub(crate) fn prune_agent_payments(&mut self, height: Height) {
        let window = self.params.agents.feedback_window_blocks;
        self.agent_payments
            .retain(|_, p| height <= p.height.saturating_add(window));
    }
}
