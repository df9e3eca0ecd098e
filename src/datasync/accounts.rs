//! The AWS accounts the gateway serves and the credentials it reaches each with.
//!
//! Three sources, chosen by configuration:
//! - none (the default): the account of the gateway's own credentials, whatever its id, in
//!   every served region, exactly as a single-account gateway always did;
//! - an accounts file (`--accounts-file`): each account's id, the role to assume in it (none for
//!   the gateway's own account), an external id, a session name and its regions;
//! - the organisation (`--organization-role-name`): every active account Organizations lists,
//!   each reached by assuming that role in it, listed again every `--accounts-refresh`.
//!
//! Each account has one credentials provider, shared by its clients in every region, over the
//! SDK's one identity cache: one `AssumeRole` per account per session, refreshed before it
//! expires, however many regions and calls. An account whose role cannot be assumed fails alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_datasync::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::AccountsConfig;
use crate::error::GatewayError;
use crate::model::{AccountId, Region, Site};

/// How long a refused `AssumeRole` is remembered: an account whose role is broken costs one
/// STS call a minute, not one per DataSync call.
const REFUSAL_MEMORY: Duration = Duration::from_secs(60);

/// How soon a failed listing of the organisation is tried again, before the first success.
const FIRST_LISTING_RETRY: Duration = Duration::from_secs(30);

/// One account the gateway serves (or served).
#[derive(Clone, Debug)]
pub struct ServedAccount {
    pub id: AccountId,
    pub name: Option<String>,
    pub regions: Vec<Region>,
    /// The role assumed to reach it; `None` for the gateway's own credentials.
    pub role_arn: Option<String>,
    /// False once the organisation no longer lists it: it is not synced any more and its ARNs
    /// are refused, but what the index recorded of it stays.
    pub active: bool,
    /// One provider for all its clients: the identity cache is partitioned by provider, so
    /// sharing it is what makes one `AssumeRole` serve every region.
    credentials: Option<SharedCredentialsProvider>,
    refusal: Arc<Mutex<Option<(Instant, String)>>>,
}

impl ServedAccount {
    /// Why its role could not be assumed the last time it was tried, if it could not.
    pub fn credentials_error(&self) -> Option<String> {
        lock(&self.refusal).as_ref().map(|(_, why)| why.clone())
    }
}

/// The served accounts, as last configured or listed.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    /// The gateway's own SDK configuration: base credentials, identity cache, retries.
    sdk: SdkConfig,
    /// The regions served where an account does not name its own.
    regions: Vec<Region>,
    session_length: Duration,
    served: RwLock<Arc<BTreeMap<AccountId, Arc<ServedAccount>>>>,
    listing: Mutex<Listing>,
}

/// The last listing of the organisation.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

enum Source {
    Own,
    File,
    Organization(Organization),
}

struct Organization {
    role_name: String,
    external_id: Option<String>,
    include_ou: Vec<String>,
    exclude: Vec<AccountId>,
    client: aws_sdk_organizations::Client,
}

/// One entry of the accounts file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    id: AccountId,
    name: Option<String>,
    role_arn: Option<String>,
    external_id: Option<String>,
    session_name: Option<String>,
    regions: Option<Vec<Region>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default)]
    account: Vec<AccountEntry>,
}

impl Accounts {
    /// The accounts `config` asks for. `sdk` carries the base credentials; `regions` are the
    /// regions served by default. Reads the accounts file; an organisation is listed by
    /// [`Accounts::refresh`].
    pub async fn new(config: &AccountsConfig, sdk: SdkConfig, regions: Vec<Region>) -> anyhow::Result<Self> {
        // AssumeRoleProvider sends STS calls wherever the SdkConfig's endpoint says.
        let sdk = match &config.sts_endpoint {
            Some(url) => sdk.to_builder().endpoint_url(url).build(),
            None => sdk,
        };
        let source = if config.accounts_file.is_some() {
            Source::File
        } else if let Some(role_name) = &config.organization_role_name {
            let mut management = sdk.clone();
            if let Some(role) = &config.organization_management_role_arn {
                let provider =
                    assume(&sdk, role, None, "datasync-gateway-organization", config.role_session_length)
                        .await;
                management =
                    sdk.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
            }
            let mut organizations = aws_sdk_organizations::config::Builder::from(&management);
            organizations.set_endpoint_url(config.organizations_endpoint.clone());
            Source::Organization(Organization {
                role_name: role_name.clone(),
                external_id: config.organization_external_id.clone(),
                include_ou: config.organization_include_ou.clone(),
                exclude: config.organization_exclude_accounts.clone(),
                client: aws_sdk_organizations::Client::from_conf(organizations.build()),
            })
        } else {
            Source::Own
        };
        let accounts = Accounts {
            inner: Arc::new(Inner {
                source,
                sdk,
                regions,
                session_length: config.role_session_length,
                served: RwLock::default(),
                listing: Mutex::default(),
            }),
        };
        if let Some(path) = &config.accounts_file {
            let served = accounts.read_file(path).await?;
            accounts.replace(served);
        }
        Ok(accounts)
    }

    /// Whether the gateway serves listed accounts, rather than only its own credentials'.
    pub fn is_listed(&self) -> bool {
        !matches!(self.inner.source, Source::Own)
    }

    /// Every account served or once served, by id.
    pub fn all(&self) -> Arc<BTreeMap<AccountId, Arc<ServedAccount>>> {
        self.inner.served.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The last listing of the organisation (never listed without one).
    pub fn listing(&self) -> Listing {
        lock(&self.inner.listing).clone()
    }

    /// The regions served by default.
    pub fn default_regions(&self) -> &[Region] {
        &self.inner.regions
    }

    /// Every site to sync: each active account's regions (the default regions of the gateway's
    /// own account without listed accounts), sorted.
    pub fn sites(&self) -> Vec<Site> {
        if !self.is_listed() {
            let mut sites: Vec<Site> =
                self.inner.regions.iter().map(|r| Site::new(None, r.clone())).collect();
            sites.sort();
            return sites;
        }
        let mut sites: Vec<Site> = (self.all().values())
            .filter(|account| account.active)
            .flat_map(|account| {
                account.regions.iter().map(|region| Site::new(Some(account.id), region.clone()))
            })
            .collect();
        sites.sort();
        sites
    }

    /// Where a call about a resource of `account` in `region` goes, with the credentials to
    /// make it with (`None`: the gateway's own); `BAD_USER_INPUT` for an account or region this
    /// gateway does not serve, before any call.
    pub fn reach(
        &self,
        account: Option<AccountId>,
        region: &str,
    ) -> Result<(Site, Option<SharedCredentialsProvider>), GatewayError> {
        if !self.is_listed() {
            let region = find_region(&self.inner.regions, region)?;
            return Ok((Site::new(None, region), None));
        }
        let Some(account) = account else {
            return Err(GatewayError::BadUserInput("this gateway serves several accounts: name one".into()));
        };
        let all = self.all();
        let served = all.get(&account).ok_or_else(|| {
            GatewayError::BadUserInput(format!("{account} is not an account this gateway serves"))
        })?;
        if !served.active {
            return Err(GatewayError::BadUserInput(format!(
                "{account} is not an account this gateway serves any more (it left the organisation); \
                 what was recorded of it stays in `executions`"
            )));
        }
        let region = find_region(&served.regions, region).map_err(|_| {
            GatewayError::BadUserInput(format!(
                "region {region} is not served for account {account}; it serves {}",
                join(&served.regions)
            ))
        })?;
        Ok((Site::new(Some(account), region), served.credentials.clone()))
    }

    /// Lists the organisation's accounts again (nothing to do for the other sources). Accounts
    /// that joined are served from now on; those that left are kept, inactive.
    pub async fn refresh(&self) {
        let Source::Organization(organization) = &self.inner.source else { return };
        let listed = organization.list().await;
        let mut listing = Listing { at: Some(Utc::now()), error: None };
        match listed {
            Ok(members) => {
                let previous = self.all();
                let mut served = BTreeMap::new();
                for (id, name) in members {
                    if organization.exclude.contains(&id) {
                        continue;
                    }
                    let account = match previous.get(&id).filter(|account| account.active) {
                        Some(account) => account.clone(),
                        None => {
                            let role_arn = format!("arn:aws:iam::{id}:role/{}", organization.role_name);
                            let external_id = organization.external_id.as_deref();
                            Arc::new(
                                self.served(id, Some(name), None, Some(role_arn), external_id, None).await,
                            )
                        }
                    };
                    served.insert(id, account);
                }
                let gone: Vec<&Arc<ServedAccount>> =
                    previous.values().filter(|account| !served.contains_key(&account.id)).collect();
                for account in gone {
                    if account.active {
                        tracing::info!(account = %account.id, "the account left the organisation; no longer synced");
                    }
                    served.insert(
                        account.id,
                        Arc::new(ServedAccount { active: false, ..ServedAccount::clone(account) }),
                    );
                }
                self.replace(served);
            }
            Err(error) => {
                tracing::warn!(%error, "the organisation's accounts could not be listed; serving those last listed");
                listing.error = Some(error);
            }
        }
        *lock(&self.inner.listing) = listing;
    }

    /// Lists the organisation now and then every `interval` (sooner while it has never
    /// succeeded); the refreshing task, if there is an organisation to list.
    pub async fn start_refreshing(&self, interval: Duration) -> Option<tokio::task::AbortHandle> {
        if !matches!(self.inner.source, Source::Organization(_)) {
            return None;
        }
        self.refresh().await;
        let accounts = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let listed = accounts.listing().error.is_none() || !accounts.all().is_empty();
                tokio::time::sleep(if listed { interval } else { interval.min(FIRST_LISTING_RETRY) }).await;
                accounts.refresh().await;
            }
        });
        Some(task.abort_handle())
    }

    fn replace(&self, served: BTreeMap<AccountId, Arc<ServedAccount>>) {
        *self.inner.served.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(served);
    }

    async fn read_file(&self, path: &Path) -> anyhow::Result<BTreeMap<AccountId, Arc<ServedAccount>>> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: AccountsFile = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid accounts file", path.display()))?;
        anyhow::ensure!(!file.account.is_empty(), "{} lists no [[account]]", path.display());
        let mut served = BTreeMap::new();
        for entry in file.account {
            let id = entry.id;
            anyhow::ensure!(!served.contains_key(&id), "{} lists account {id} twice", path.display());
            let account = self
                .served(
                    id,
                    entry.name,
                    entry.regions.filter(|regions| !regions.is_empty()),
                    entry.role_arn,
                    entry.external_id.as_deref(),
                    entry.session_name.as_deref(),
                )
                .await;
            served.insert(id, Arc::new(account));
        }
        Ok(served)
    }

    async fn served(
        &self,
        id: AccountId,
        name: Option<String>,
        regions: Option<Vec<Region>>,
        role_arn: Option<String>,
        external_id: Option<&str>,
        session_name: Option<&str>,
    ) -> ServedAccount {
        let refusal = Arc::default();
        let credentials = match &role_arn {
            Some(role) => {
                let session = session_name.unwrap_or("datasync-gateway");
                let provider =
                    assume(&self.inner.sdk, role, external_id, session, self.inner.session_length).await;
                let role = AssumedRole { provider, account: id, refused: Arc::clone(&refusal) };
                Some(SharedCredentialsProvider::new(role))
            }
            None => None,
        };
        let regions = regions.unwrap_or_else(|| self.inner.regions.clone());
        ServedAccount { id, name, regions, role_arn, active: true, credentials, refusal }
    }
}

impl Organization {
    /// Every active account of the organisation (of the included units, when some are given),
    /// with its name.
    async fn list(&self) -> Result<Vec<(AccountId, String)>, String> {
        let mut accounts = Vec::new();
        let mut take = |account: &aws_sdk_organizations::types::Account| {
            // `State` replaced `Status` (retired in September 2026); an older answer has only `Status`.
            let active = match (account.state(), account.status()) {
                (Some(state), _) => state.as_str() == "ACTIVE",
                (None, Some(status)) => status.as_str() == "ACTIVE",
                (None, None) => true,
            };
            match account.id().map(AccountId::parse) {
                Some(Ok(id)) if active => accounts.push((id, account.name().unwrap_or_default().to_owned())),
                Some(Ok(_)) => {}
                _ => tracing::warn!(id = account.id(), "Organizations listed an account without a valid id"),
            }
        };
        if self.include_ou.is_empty() {
            let mut pages = self.client.list_accounts().into_paginator().send();
            while let Some(page) = pages.next().await {
                page.map_err(|error| describe_failure(&error))?.accounts().iter().for_each(&mut take);
            }
        } else {
            for unit in &self.include_ou {
                let mut pages =
                    self.client.list_accounts_for_parent().parent_id(unit).into_paginator().send();
                while let Some(page) = pages.next().await {
                    page.map_err(|error| describe_failure(&error))?.accounts().iter().for_each(&mut take);
                }
            }
        }
        Ok(accounts)
    }
}

/// A provider of an assumed role's credentials that remembers a refusal for a while.
#[derive(Debug)]
struct AssumedRole {
    provider: AssumeRoleProvider,
    account: AccountId,
    refused: Arc<Mutex<Option<(Instant, String)>>>,
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let remembered = lock(&self.refused)
                .as_ref()
                .filter(|(at, _)| at.elapsed() < REFUSAL_MEMORY)
                .map(|(_, why)| why.clone());
            if let Some(why) = remembered {
                return Err(CredentialsError::provider_error(Refused(why)));
            }
            let provided = self.provider.provide_credentials().await;
            let mut refused = lock(&self.refused);
            match &provided {
                Ok(_) => *refused = None,
                Err(error) => {
                    tracing::warn!(account = %self.account, error = %aws_smithy_types::error::display::DisplayErrorContext(error), "the account's role could not be assumed");
                    // Only STS's refusal is remembered: a timeout or a 5xx may pass at once.
                    if let Some(why) = refusal_reason(error) {
                        *refused = Some((Instant::now(), why));
                    }
                }
            }
            provided
        })
    }
}

/// A remembered refusal, given to the SDK as the credentials error.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (remembered)", self.0)
    }
}

impl std::error::Error for Refused {}

/// What may be said of a refused `AssumeRole`: STS's error code, not its message (which names
/// roles and principals).
/// `None` when STS did not answer with a refusal (it could not be reached, timed out, failed).
fn refusal_reason(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    type StsError = aws_sdk_sts::error::SdkError<
        aws_sdk_sts::operation::assume_role::AssumeRoleError,
        aws_smithy_runtime_api::http::Response,
    >;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(Refused(why)) = error.downcast_ref::<Refused>() {
            return Some(why.clone());
        }
        if let Some(aws_sdk_sts::error::SdkError::ServiceError(context)) = error.downcast_ref::<StsError>() {
            if context.raw().status().is_client_error() {
                return Some(format!(
                    "STS refused AssumeRole: {}",
                    context.err().code().unwrap_or("an error")
                ));
            }
        }
        source = error.source();
    }
    None
}

/// Whether `error` (a DataSync call's, anywhere in its chain) is an account's role refused by
/// STS, now or within the last minute, rather than STS being unreachable.
pub fn is_role_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    refusal_reason(error).is_some()
}

fn describe_failure<E: ProvideErrorMetadata>(
    error: &aws_sdk_organizations::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    match error.code() {
        Some(code) => format!("Organizations refused the listing: {code}"),
        None => "Organizations could not be reached".to_owned(),
    }
}

async fn assume(
    sdk: &SdkConfig,
    role_arn: &str,
    external_id: Option<&str>,
    session_name: &str,
    session_length: Duration,
) -> AssumeRoleProvider {
    let mut builder =
        AssumeRoleProvider::builder(role_arn).session_name(session_name).session_length(session_length);
    if let Some(external_id) = external_id {
        builder = builder.external_id(external_id);
    }
    builder.configure(sdk).build().await
}

fn find_region(regions: &[Region], region: &str) -> Result<Region, GatewayError> {
    regions.iter().find(|served| served.as_str() == region).cloned().ok_or_else(|| {
        GatewayError::BadUserInput(format!(
            "region {region} is not served by this gateway; it serves {}",
            join(regions)
        ))
    })
}

/// The regions, sorted, for a message.
fn join(regions: &[Region]) -> String {
    let mut names: Vec<&str> = regions.iter().map(Region::as_str).collect();
    names.sort_unstable();
    names.join(", ")
}

/// A poisoned lock only means a panic elsewhere; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
