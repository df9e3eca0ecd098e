//! API keys: `dsg_<id>_<secret>`, 12 hex digits of id and 32 random bytes of secret
//! (base64url). Only the SHA-256 of the whole key is kept, in PostgreSQL (`api_keys`) or, for
//! the database-less mode, in a JSON file; `datasync-gateway keys create|list|revoke` manage
//! them. Verified keys are remembered for a short while so that a request costs no query;
//! a revocation takes effect within that time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::AccountId;
use crate::request::Role;
use crate::store::keys::KeyTable;
use crate::store::StoreError;

pub use crate::store::keys::KeyRecord;

const PREFIX: &str = "dsg_";

/// Where keys are kept.
#[derive(Clone)]
pub enum KeyStore {
    Database(KeyTable),
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the keys file {path}: {message}")]
    File { path: String, message: String },
    #[error("no key with id {0}")]
    Unknown(String),
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

/// The id a presented key claims, if it has the shape of one.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty()).then_some(id)
}

fn sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

impl KeyStore {
    /// Makes a new key for `role`, limited to `accounts` (none: every account); the key (shown
    /// once) and its record.
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        accounts: Vec<AccountId>,
    ) -> Result<(String, KeyRecord), KeyError> {
        let mut random = [0u8; 38];
        getrandom::fill(&mut random).map_err(|error| KeyError::Random(error.to_string()))?;
        let id: String = random[..6].iter().map(|byte| format!("{byte:02x}")).collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&random[6..]);
        let key = format!("{PREFIX}{id}_{secret}");
        let record = KeyRecord {
            id,
            name: name.to_owned(),
            role,
            key_sha256: sha256_hex(&key),
            created_at: Utc::now(),
            revoked_at: None,
            accounts,
        };
        match self {
            KeyStore::Database(store) => store.insert_key(&record).await?,
            KeyStore::File(path) => {
                let mut records = read_file(path)?;
                records.push(record.clone());
                write_file(path, &records)?;
            }
        }
        Ok((key, record))
    }

    pub async fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        match self {
            KeyStore::Database(store) => Ok(store.keys().await?),
            KeyStore::File(path) => read_file(path),
        }
    }

    pub async fn revoke(&self, id: &str) -> Result<(), KeyError> {
        let revoked = match self {
            KeyStore::Database(store) => store.revoke_key(id).await?,
            KeyStore::File(path) => {
                let mut records = read_file(path)?;
                let found = records.iter_mut().find(|record| record.id == id && record.revoked_at.is_none());
                let revoked = found.map(|record| record.revoked_at = Some(Utc::now())).is_some();
                write_file(path, &records)?;
                revoked
            }
        };
        if revoked {
            Ok(())
        } else {
            Err(KeyError::Unknown(id.to_owned()))
        }
    }

    /// The record of the key with `id`, revoked or not, if any.
    pub async fn record(&self, id: &str) -> Result<Option<KeyRecord>, KeyError> {
        Ok(match self {
            KeyStore::Database(store) => store.key(id).await?,
            KeyStore::File(path) => read_file(path)?.into_iter().find(|record| record.id == id),
        })
    }
}

impl KeyRecord {
    /// Whether `key` is this live (not revoked) key: compared by hash, in constant time.
    pub fn is_live_key(&self, key: &str) -> bool {
        let presented = sha256_hex(key);
        self.revoked_at.is_none() && bool::from(self.key_sha256.as_bytes().ct_eq(presented.as_bytes()))
    }
}

fn read_file(path: &Path) -> Result<Vec<KeyRecord>, KeyError> {
    let error = |message: String| KeyError::File { path: path.display().to_string(), message };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| error(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(error(e.to_string())),
    }
}

/// Written to a temporary file and renamed, so a reader never sees half a file.
fn write_file(path: &Path, records: &[KeyRecord]) -> Result<(), KeyError> {
    let error = |message: String| KeyError::File { path: path.display().to_string(), message };
    let json = serde_json::to_vec_pretty(records).map_err(|e| error(e.to_string()))?;
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, json)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| error(e.to_string()))
}

/// How long a verified key is trusted without looking again.
pub const VERIFIED_FOR: Duration = Duration::from_secs(30);
