//! Plain transfers between accounts, and the balance check and debit every
//! rule that spends from an account uses.

use agora_types::{AccountId, Amount};

use crate::{State, TxError};

impl State {
    /// Refuse (`InsufficientBalance`) unless `from` holds `amount`.
    pub(crate) fn debit_check(&self, from: AccountId, amount: Amount) -> Result<(), TxError> {
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

    /// Take `amount` from `from`'s balance, or refuse and change nothing.
    pub(crate) fn debit(&mut self, from: AccountId, amount: Amount) -> Result<(), TxError> {
        self.debit_check(from, amount)?;
        self.accounts.entry(from).or_default().balance -= amount;
        Ok(())
    }

    /// `Transfer`: move `amount` from `from` to `to`, creating `to` if it is new.
    pub(crate) fn transfer(
        &mut self,
        from: AccountId,
        to: AccountId,
        amount: Amount,
    ) -> Result<(), TxError> {
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
}
