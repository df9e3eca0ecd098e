//! The accounts served, as the `accounts` query and `/readyz` show them: each account's
//! regions, whether its role can be assumed, and each of its sites' last sync (by whichever
//! replica ran it).

use std::time::Duration;

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};

use crate::datasync::DataSyncClient;
use crate::error::GatewayError;
use crate::request::Caller;
use crate::store::coordination::Coordination;
use crate::store::within;

/// Whether an account is synced.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    /// Served: its executions are synced and its ARNs are answered.
    Served,
    /// The organisation no longer lists it: no longer synced, its ARNs are refused, and what
    /// the index recorded of it stays.
    Left,
}

/// One account the gateway serves (or served).
#[derive(SimpleObject, Clone, Debug)]
pub struct Account {
    /// The 12-digit account id; null for the gateway's own account when no accounts are
    /// configured (the gateway never needs its id).
    pub id: Option<String>,
    /// Its name in the organisation or the accounts file.
    pub name: Option<String>,
    pub status: AccountStatus,
    /// The regions served in it.
    pub regions: Vec<String>,
    /// The role the gateway assumes to reach it; null for the gateway's own credentials.
    pub role_arn: Option<String>,
    /// Why its role could not be assumed the last time the gateway tried (STS's error code),
    /// or null if it could.
    pub credentials_error: Option<String>,
    /// Each region's last discovery sync; empty without a database or before the first run.
    pub sync: Vec<SiteSync>,
}

/// The last discovery sync of one of an account's regions.
#[derive(SimpleObject, Clone, Debug)]
pub struct SiteSync {
    pub region: String,
    pub last_run_at: DateTime<Utc>,
    /// Whether that run succeeded.
    pub ok: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The replica that ran it.
    pub replica: String,
    pub duration_ms: i64,
    /// Executions DataSync listed.
    pub listed: i32,
    /// Executions described (new to the index, or a pending report).
    pub described: i32,
    /// Runs so far.
    pub runs: i64,
}

/// The accounts at a glance, for `/readyz` and `/metrics` (no database read).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountsSummary {
    /// Whether accounts are configured (a file or the organisation), rather than only the
    /// gateway's own.
    pub listed: bool,
    pub served: usize,
    /// Served accounts whose role was refused the last time it was assumed.
    pub unreachable: Vec<String>,
    pub left: usize,
    /// When the organisation was last listed, and why that failed if it did.
    pub organization_listed_at: Option<DateTime<Utc>>,
    pub organization_error: Option<String>,
}

#[derive(Clone)]
pub struct AccountService {
    datasync: DataSyncClient,
    /// Where the sync's runs are recorded, with its time limit, when there is a database.
    runs: Option<(Coordination, Duration)>,
}

impl AccountService {
    pub fn new(datasync: DataSyncClient, runs: Option<(Coordination, Duration)>) -> Self {
        AccountService { datasync, runs }
    }

    pub fn summary(&self) -> AccountsSummary {
        let accounts = self.datasync.accounts();
        let all = accounts.all();
        let listing = accounts.listing();
        let served = all.values().filter(|account| account.active);
        AccountsSummary {
            listed: accounts.is_listed(),
            served: if accounts.is_listed() { served.clone().count() } else { 1 },
            unreachable: served
                .filter(|account| account.credentials_error().is_some())
                .map(|account| account.id.to_string())
                .collect(),
            left: all.values().filter(|account| !account.active).count(),
            organization_listed_at: listing.at,
            organization_error: listing.error,
        }
    }

    /// Every account served or once served that `caller` may see, by id (the gateway's own
    /// when unlisted).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Account>, GatewayError> {
        let runs = match &self.runs {
            Some((coordination, limit)) => within(*limit, coordination.sync_runs()).await?,
            None => Vec::new(),
        };
        let sync_of = |account: Option<crate::model::AccountId>| -> Vec<SiteSync> {
            (runs.iter())
                .filter(|run| run.account_id == account)
                .map(|run| SiteSync {
                    region: run.region.to_string(),
                    last_run_at: run.last_run_at,
                    ok: run.error.is_none(),
                    error: run.error.clone(),
                    replica: run.replica.clone(),
                    duration_ms: run.duration_ms,
                    listed: run.listed,
                    described: run.described,
                    runs: run.runs,
                })
                .collect()
        };
        let accounts = self.datasync.accounts();
        if !accounts.is_listed() {
            // The gateway's own account has no id here: whether it is one a limited caller may
            // see cannot be said, so such a caller is not shown it.
            if caller.accounts().accounts().is_some() {
                return Ok(Vec::new());
            }
            return Ok(vec![Account {
                id: None,
                name: None,
                status: AccountStatus::Served,
                regions: accounts.default_regions().iter().map(ToString::to_string).collect(),
                role_arn: None,
                credentials_error: None,
                sync: sync_of(None),
            }]);
        }
        Ok((accounts.all().values())
            .filter(|account| caller.accounts().allows(account.id))
            .map(|account| Account {
                id: Some(account.id.to_string()),
                name: account.name.clone(),
                status: if account.active { AccountStatus::Served } else { AccountStatus::Left },
                regions: account.regions.iter().map(ToString::to_string).collect(),
                role_arn: account.role_arn.clone(),
                credentials_error: account.credentials_error(),
                sync: sync_of(Some(account.id)),
            })
            .collect())
    }
}
