//! Who a request comes from, once authenticated: its subject, its role and the accounts it
//! may see.

use std::borrow::Cow;
use std::sync::Arc;

use crate::model::AccountId;

use serde::{Deserialize, Serialize};

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Operator,
}

impl Role {
    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "reader" => Some(Role::Reader),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Stable and safe to log: `key:<id>`, `jwt:<issuer>/<subject>`, or `anonymous` (borrowed:
    /// every request of an anonymous caller makes one).
    pub subject: Cow<'static, str>,
    pub role: Role,
    pub accounts: AccountScope,
}

const ANONYMOUS: &str = "anonymous";

impl Identity {
    pub fn anonymous() -> Self {
        Identity { subject: Cow::Borrowed(ANONYMOUS), role: Role::Operator, accounts: AccountScope::All }
    }

    /// Whether this is [`Identity::anonymous`] (told without making one to compare with).
    pub fn is_anonymous(&self) -> bool {
        self.subject == ANONYMOUS && self.role == Role::Operator && self.accounts == AccountScope::All
    }
}

/// Which accounts' executions and tasks a caller may see: every account (unscoped keys and
/// tokens, as before accounts existed), or only some. Anything of another account is, to a
/// scoped caller, as if it did not exist: `NOT_FOUND`, left out of pages, counts, statistics
/// and events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccountScope {
    #[default]
    All,
    /// Sorted, without repeats, never empty.
    Only(Arc<[AccountId]>),
}

impl AccountScope {
    /// Only `accounts`; every account when none are given.
    pub fn only(mut accounts: Vec<AccountId>) -> Self {
        accounts.sort_unstable();
        accounts.dedup();
        if accounts.is_empty() {
            AccountScope::All
        } else {
            AccountScope::Only(accounts.into())
        }
    }

    pub fn allows(&self, account: AccountId) -> bool {
        match self {
            AccountScope::All => true,
            AccountScope::Only(accounts) => accounts.binary_search(&account).is_ok(),
        }
    }

    /// The accounts, when limited to some.
    pub fn accounts(&self) -> Option<&[AccountId]> {
        match self {
            AccountScope::All => None,
            AccountScope::Only(accounts) => Some(accounts),
        }
    }
}
