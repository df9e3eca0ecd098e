//! The `api_keys` table: one row per key, holding its SHA-256, never the key (see
//! [`crate::auth::keys`], which creates and verifies keys).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::StoreError;
use crate::model::AccountId;
use crate::request::Role;

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
    /// The accounts its holder may see; empty: every account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountId>,
}

#[derive(Clone)]
pub struct KeyTable {
    pub(super) pool: PgPool,
}

impl KeyTable {
    pub async fn insert_key(&self, record: &KeyRecord) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO api_keys (id, name, role, key_sha256, created_at, accounts) \
             VALUES ($1, $2, $3, decode($4, 'hex'), $5, $6)",
            &record.id,
            &record.name,
            record.role.as_str(),
            &record.key_sha256,
            record.created_at,
            &record.accounts.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        // encode() of a NOT NULL column is never NULL; PostgreSQL does not say so about a
        // function's result, hence the `!`.
        let rows = sqlx::query_as!(
            StoredKey,
            r#"SELECT id, name, role, encode(key_sha256, 'hex') AS "key_sha256!", created_at, revoked_at, accounts FROM api_keys ORDER BY created_at"#,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(StoredKey::record).collect())
    }

    pub async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query_as!(
            StoredKey,
            r#"SELECT id, name, role, encode(key_sha256, 'hex') AS "key_sha256!", created_at, revoked_at, accounts FROM api_keys WHERE id = $1"#,
            id,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(StoredKey::record))
    }

    pub async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let revoked =
            sqlx::query!("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", id)
                .execute(&self.pool)
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
    accounts: Vec<String>,
}

impl StoredKey {
    /// The record; `None` (logged) for a row whose accounts do not parse. Written only from
    /// parsed ids, so that is a hand edit: the key is refused rather than read as unscoped.
    fn record(self) -> Option<KeyRecord> {
        let accounts =
            self.accounts.iter().map(|account| AccountId::parse(account)).collect::<Result<Vec<_>, _>>();
        let accounts = accounts
            .inspect_err(|error| tracing::error!(key = self.id, %error, "a key's accounts do not parse; the key is refused"))
            .ok()?;
        Some(KeyRecord {
            id: self.id,
            name: self.name,
            role: Role::parse(&self.role).unwrap_or(Role::Reader),
            key_sha256: self.key_sha256,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            accounts,
        })
    }
}
