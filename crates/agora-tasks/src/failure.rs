//! [`Failure`]: an error that says what was being done when it happened,
//! with the error that caused it as its source, so the binary prints the
//! whole chain ("cannot listen on ... for the gateway: address in use").

use std::error::Error;
use std::fmt::Display;

/// Any error, boxed, as the source of a [`Failure`].
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Starting or running a role failed: what was being done, and why.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// `source` happened while doing `what`.
    #[error("{what}")]
    Context {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
    /// A refusal or a bad setting, with no underlying error.
    #[error("{0}")]
    Message(String),
    /// An error that needs no more words.
    #[error(transparent)]
    Other(BoxError),
}

impl Failure {
    /// A failure with no underlying error (a refusal, a bad setting).
    pub fn msg(what: impl Display) -> Self {
        Failure::Message(what.to_string())
    }

    /// An error as it is, without context (what `?` does where `From` cannot).
    pub fn other(source: impl Into<BoxError>) -> Self {
        Failure::Other(source.into())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::other(e)
    }
}

impl From<tokio::task::JoinError> for Failure {
    fn from(e: tokio::task::JoinError) -> Self {
        Failure::other(e)
    }
}

/// Adds what was being done to an error (or to a missing value).
pub trait Context<T> {
    /// Wrap the error in `what`.
    fn context(self, what: impl Display) -> Result<T, Failure>;
    /// Wrap the error in what `what()` says (built only on failure).
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Failure>;
}

impl<T, E: Into<BoxError>> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::Context {
            what: what.to_string(),
            source: e.into(),
        })
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Failure> {
        self.map_err(|e| Failure::Context {
            what: what().to_string(),
            source: e.into(),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl Display) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::msg(what))
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::msg(what()))
    }
}

/// Return early with a [`Failure`] built like `format!`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::Failure::msg(format!($($arg)*)).into())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_cause_as_source() {
        let io: Result<(), std::io::Error> = Err(std::io::Error::other("disk full"));
        let err = io.context("writing genesis.toml").unwrap_err();
        assert_eq!(err.to_string(), "writing genesis.toml");
        assert_eq!(err.source().unwrap().to_string(), "disk full");
        let none: Option<u8> = None;
        assert_eq!(none.context("no port").unwrap_err().to_string(), "no port");
        let plain = Failure::other(std::io::Error::other("gone"));
        assert_eq!(plain.to_string(), "gone");
    }
}
