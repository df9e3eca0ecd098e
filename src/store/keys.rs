//! The `api_keys` table: one row per key, holding its SHA-256, never the key (see
//! [`crate::auth::keys`], which creates and verifies keys).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};

use super::StoreError;
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
}

#[derive(Clone)]
pub struct KeyTable {
    pub(super) pool: PgPool,
}

impl KeyTable {
    pub async fn insert_key(&self, record: &KeyRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_keys (id, name, role, key_sha256, created_at) VALUES ($1, $2, $3, decode($4, 'hex'), $5)")
            .bind(&record.id)
            .bind(&record.name)
            .bind(record.role.as_str())
            .bind(&record.key_sha256)
            .bind(record.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, role, encode(key_sha256, 'hex') AS key_sha256, created_at, revoked_at FROM api_keys ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record).collect())
    }

    pub async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, role, encode(key_sha256, 'hex') AS key_sha256, created_at, revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(record))
    }

    pub async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let revoked =
            sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(revoked.rows_affected() == 1)
    }
}

fn record(row: &sqlx::postgres::PgRow) -> KeyRecord {
    KeyRecord {
        id: row.get("id"),
        name: row.get("name"),
        role: Role::parse(row.get::<&str, _>("role")).unwrap_or(Role::Reader),
        key_sha256: row.get("key_sha256"),
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
    }
}
