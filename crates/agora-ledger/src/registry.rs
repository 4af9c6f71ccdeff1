//! The model and provider registries: registering a model, registering,
//! re-registering and deregistering a provider, and the checks on the text
//! and endpoints they carry.

use agora_types::network::{check_public_host, is_development_chain};
use agora_types::{AccountId, ModelEntry, ProviderInfo};

use crate::{State, TxError};

const MAX_ENDPOINT_LEN: usize = 256;
const MAX_NAME_LEN: usize = 128;
const MAX_MODELS_PER_PROVIDER: usize = 64;

impl State {
    /// Look a model up by its registry name.
    pub fn model_by_name(&self, name: &str) -> Option<&ModelEntry> {
        self.models.values().find(|m| m.name == name)
    }

    /// `RegisterModel`: add a model under a new id and a new name.
    pub(crate) fn register_model(
        &mut self,
        sender: AccountId,
        model: &ModelEntry,
    ) -> Result<(), TxError> {
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
        let fee = self.params.model_registration_fee;
        self.debit(sender, fee)?;
        self.burned = self.burned.saturating_add(u128::from(fee));
        self.models.insert(model.id, model.clone());
        Ok(())
    }

    /// `RegisterProvider`: register or re-register a provider, locking its stake.
    pub(crate) fn register_provider(&mut self, info: ProviderInfo) -> Result<(), TxError> {
        check_endpoint(&info.endpoint)?;
        // Every gateway and validator dials this endpoint: outside development
        // chains it must name a public host, never the dialler's own network.
        if !is_development_chain(&self.chain_id) {
            check_public_host(&info.endpoint).map_err(|e| TxError::InvalidField {
                field: "endpoint",
                reason: format!("must be a public host: {e}"),
            })?;
        }
        // No models: a data node, running compute-to-data jobs only.
        if info.models.len() > MAX_MODELS_PER_PROVIDER {
            return Err(TxError::InvalidField {
                field: "models",
                reason: format!("must list at most {MAX_MODELS_PER_PROVIDER} models"),
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
        // Re-registration first releases the old stake, then locks the new one.
        // While a verdict or dispute can still reach its jobs, a provider may
        // neither shrink its stake nor change how its jobs are judged (exact
        // replay or statistics): a caught cheater would otherwise have its
        // dispute re-checked leniently.
        let old = self.providers.get(&info.id);
        let old_stake = old.map_or(0, |p| p.stake);
        if info.stake < old_stake || old.is_some_and(|p| p.replayable != info.replayable) {
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

    /// `DeregisterProvider`: remove a provider and return its stake once released.
    pub(crate) fn deregister_provider(&mut self, id: AccountId) -> Result<(), TxError> {
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

pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), TxError> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(TxError::InvalidField {
            field,
            reason: format!("must be 1 to {max} bytes of printable text"),
        });
    }
    Ok(())
}

pub(crate) fn check_endpoint(endpoint: &str) -> Result<(), TxError> {
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
