//! Where the gateway's DataSync calls go: a region of an account it serves.

use std::fmt;

use super::{AccountId, Region};

/// One region of one account: the unit DataSync throttles by, and what the call budget, the
/// SDK clients and the discovery sync's jobs are kept per. `account` is `None` on a gateway
/// that serves only the account of its own credentials (no accounts configured), which never
/// needs that account's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site {
    pub account: Option<AccountId>,
    pub region: Region,
}

impl Site {
    pub fn new(account: Option<AccountId>, region: Region) -> Self {
        Site { account, region }
    }
}

/// `111122223333/us-east-1`, or the region alone for the gateway's own account.
impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(account) => write!(f, "{account}/{}", self.region),
            None => write!(f, "{}", self.region),
        }
    }
}
