//! The `trusted_documents` table: documents a frontend's CI registered with
//! `datasync-gateway documents push` (see [`crate::service::documents`], which serves them).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::StoreError;

/// One stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: String,
    pub name: Option<String>,
    pub body: String,
}

/// What a push did: documents added, and those already there with the same text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub added: u64,
    pub present: u64,
}

/// What changes whenever a document is added (the table is only added to): compared by the
/// gateways that serve the documents, which read them all again only when it moves.
pub type Fingerprint = (i64, Option<DateTime<Utc>>);

#[derive(Clone)]
pub struct DocumentTable {
    pub(super) pool: PgPool,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An id already stands for another text: ids are for good, so nothing was added.
    #[error("documents {0:?} are stored with other texts under the same ids; nothing was added")]
    Conflict(Vec<String>),
}

impl DocumentTable {
    /// Adds `documents` in one transaction: all of them, or none when an id is stored with
    /// another text. Pushing the same documents again adds nothing.
    pub async fn push(&self, documents: &[StoredDocument]) -> Result<Pushed, PushError> {
        let ids: Vec<String> = documents.iter().map(|document| document.id.clone()).collect();
        let names: Vec<Option<String>> = documents.iter().map(|document| document.name.clone()).collect();
        let bodies: Vec<String> = documents.iter().map(|document| document.body.clone()).collect();
        let mut transaction = self.pool.begin().await.map_err(StoreError::from)?;
        let added = sqlx::query!(
            "INSERT INTO trusted_documents (id, name, body) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) \
             ON CONFLICT (id) DO NOTHING",
            &ids,
            &names as &[Option<String>],
            &bodies,
        )
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        let conflicts = sqlx::query_scalar!(
            "SELECT stored.id FROM trusted_documents stored \
             JOIN UNNEST($1::text[], $2::text[]) AS pushed (id, body) ON stored.id = pushed.id \
             WHERE stored.body <> pushed.body ORDER BY stored.id",
            &ids,
            &bodies,
        )
        .fetch_all(&mut *transaction)
        .await
        .map_err(StoreError::from)?;
        if !conflicts.is_empty() {
            return Err(PushError::Conflict(conflicts));
        }
        transaction.commit().await.map_err(StoreError::from)?;
        Ok(Pushed { added, present: ids.len() as u64 - added })
    }

    pub async fn documents(&self) -> Result<Vec<StoredDocument>, StoreError> {
        Ok(sqlx::query_as!(StoredDocument, "SELECT id, name, body FROM trusted_documents ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn fingerprint(&self) -> Result<Fingerprint, StoreError> {
        let row =
            sqlx::query!(r#"SELECT count(*) AS "count!", max(added_at) AS latest FROM trusted_documents"#)
                .fetch_one(&self.pool)
                .await?;
        Ok((row.count, row.latest))
    }
}
