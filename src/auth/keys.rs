//! API keys: `dsg_<id>_<secret>`, 12 hex digits of id and 32 random bytes of secret
//! (base64url). Only the SHA-256 of the whole key is kept, in PostgreSQL (`api_keys`) or, for
//! the database-less mode, in a JSON file; `datasync-gateway keys create|list|revoke` manage
//! them. Verified keys are remembered for a short while so that a request costs no query;
//! a revocation takes effect within that time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Role;
use crate::store::{HistoryStore, StoreError};

const PREFIX: &str = "dsg_";

/// One key as listed: never the key itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the whole key.
    pub key_sha256: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where keys are kept.
#[derive(Clone)]
pub enum KeyStore {
    Database(HistoryStore),
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
    /// Makes a new key; the key (shown once) and its record.
    pub async fn create(&self, name: &str, role: Role) -> Result<(String, KeyRecord), KeyError> {
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

impl HistoryStore {
    async fn insert_key(&self, record: &KeyRecord) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO api_keys (id, name, role, key_sha256, created_at) VALUES ($1, $2, $3, decode($4, 'hex'), $5)",
            &record.id,
            &record.name,
            record.role.as_str(),
            &record.key_sha256,
            record.created_at,
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        // encode() of a NOT NULL column is never NULL; PostgreSQL does not say so about a
        // function's result, hence the `!`.
        let rows = sqlx::query_as!(
            StoredKey,
            r#"SELECT id, name, role, encode(key_sha256, 'hex') AS "key_sha256!", created_at, revoked_at FROM api_keys ORDER BY created_at"#,
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(KeyRecord::from).collect())
    }

    async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query_as!(
            StoredKey,
            r#"SELECT id, name, role, encode(key_sha256, 'hex') AS "key_sha256!", created_at, revoked_at FROM api_keys WHERE id = $1"#,
            id,
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(KeyRecord::from))
    }

    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let revoked =
            sqlx::query!("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", id)
                .execute(self.pool())
                .await?;
        Ok(revoked.rows_affected() == 1)
    }
}

/// A row of `api_keys` as selected (the hash in hex).
struct StoredKey {
    id: String,
    name: String,
    role: String,
    key_sha256: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<StoredKey> for KeyRecord {
    fn from(row: StoredKey) -> Self {
        KeyRecord {
            id: row.id,
            name: row.name,
            role: Role::parse(&row.role).unwrap_or(Role::Reader),
            key_sha256: row.key_sha256,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// How long a verified key is trusted without looking again.
pub const VERIFIED_FOR: Duration = Duration::from_secs(30);
