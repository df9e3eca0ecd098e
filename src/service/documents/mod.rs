//! Trusted documents: the operations frontends ship, read from manifest files
//! (`--trusted-documents`) and from the `trusted_documents` table (`documents push`), and kept
//! current while the gateway runs. The gate (`graphql`) looks requests up here; what it does
//! with an operation that is not here is its policy, not this module's.
//!
//! The set is replaced whole: a reload that fails (a manifest that does not parse, two sources
//! giving one id different texts, the database down) keeps the set that was being served, and
//! says why in the log.

pub mod manifest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use manifest::{document_id, sha256_hex, ManifestDocument, ManifestError};

use crate::store::documents::{DocumentTable, Fingerprint};
use crate::store::within;

/// One trusted document.
#[derive(Debug, PartialEq, Eq)]
pub struct Document {
    /// As its manifest lists it, without a `sha256:` prefix.
    pub id: String,
    pub name: Option<String>,
    pub text: Arc<str>,
    /// The SHA-256 of its text, in hex.
    pub sha256: String,
}

/// Where trusted documents come from.
#[derive(Default)]
pub struct Sources {
    /// A manifest, or a directory of them.
    pub path: Option<PathBuf>,
    /// The table, and how long a read of it may take.
    pub table: Option<(DocumentTable, Duration)>,
}

/// The documents being served, shared by every request's gate; cheap to clone.
#[derive(Clone, Default)]
pub struct TrustedDocuments {
    current: Arc<RwLock<Arc<DocumentSet>>>,
}

#[derive(Default)]
struct DocumentSet {
    /// Moves with every set published (starting at 1), so that what was decided for one set
    /// is not taken for another's.
    generation: u64,
    by_id: HashMap<String, Arc<Document>>,
    /// The same documents by the SHA-256 of their text, which Apollo's persisted queries send
    /// and which is not every manifest's id (Relay's are MD5s).
    by_sha256: HashMap<String, Arc<Document>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("document {0} is listed twice, with different texts")]
    Conflict(String),
}

impl TrustedDocuments {
    /// The document an id names (with or without `sha256:`), or whose text has that SHA-256.
    pub fn get(&self, id: &str) -> Option<Arc<Document>> {
        let set = self.set();
        let id = document_id(id);
        set.by_id.get(id).or_else(|| set.by_sha256.get(id)).cloned()
    }

    /// The document whose text is `text` (whose SHA-256, in hex, is `sha256`).
    pub fn with_text(&self, sha256: &str, text: &str) -> Option<Arc<Document>> {
        self.set().by_sha256.get(sha256).filter(|document| &*document.text == text).cloned()
    }

    /// How many documents are served.
    pub fn len(&self) -> usize {
        self.set().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Which set is served: it moves with every reload.
    pub fn generation(&self) -> u64 {
        self.set().generation
    }

    fn set(&self) -> Arc<DocumentSet> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn replace(&self, mut set: DocumentSet) {
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        set.generation = current.generation + 1;
        *current = Arc::new(set);
    }

    /// Reads `sources`, then keeps them current: every `interval` the manifests are read again if
    /// they changed and the table if it grew, and on SIGHUP both are read again regardless. A
    /// manifest that cannot be read at start fails the start; the table, like every other use
    /// of the database, may be down then and is read once it answers. Without sources there
    /// is nothing to keep current, and no task.
    pub async fn start(
        sources: Sources,
        interval: Duration,
    ) -> Result<(Self, Option<tokio::task::AbortHandle>), LoadError> {
        let documents = TrustedDocuments::default();
        if sources.path.is_none() && sources.table.is_none() {
            return Ok((documents, None));
        }
        let mut loader = Loader { sources, documents: documents.clone(), ..Loader::default() };
        loader.files_changed(true)?;
        if let Err(error) = loader.table_changed(true).await {
            tracing::warn!(%error, "trusted documents: the database could not be read; retrying");
        }
        loader.publish()?;
        let task = tokio::spawn(loader.run(interval));
        Ok((documents, Some(task.abort_handle())))
    }
}

/// What the reload task remembers of its sources, to read them again only when they change.
#[derive(Default)]
struct Loader {
    sources: Sources,
    documents: TrustedDocuments,
    files: Vec<ManifestDocument>,
    files_stamp: Option<Vec<FileStamp>>,
    table: Vec<ManifestDocument>,
    table_stamp: Option<Fingerprint>,
}

/// A manifest file as last seen: a change of either is a change of the file.
type FileStamp = (PathBuf, Option<SystemTime>, u64);

impl Loader {
    async fn run(mut self, interval: Duration) {
        let mut hangup = hangups();
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            let forced = tokio::select! {
                _ = ticks.tick() => false,
                Some(()) = hangup.recv() => true,
            };
            if let Err(error) = self.reload(forced).await {
                tracing::error!(%error, "trusted documents not reloaded; the previous ones are kept");
            }
        }
    }

    async fn reload(&mut self, forced: bool) -> Result<(), LoadError> {
        let files = self.files_changed(forced);
        let table = match self.table_changed(forced).await {
            Ok(changed) => changed,
            Err(error) => {
                tracing::warn!(%error, "trusted documents: the database could not be read");
                false
            }
        };
        if files? || table || forced {
            self.publish()?;
        }
        Ok(())
    }

    /// Reads the manifests again if they changed (or `forced`); whether they did.
    fn files_changed(&mut self, forced: bool) -> Result<bool, LoadError> {
        let Some(path) = &self.sources.path else { return Ok(false) };
        let stamp = stamp(path);
        if !forced && self.files_stamp.as_ref() == Some(&stamp) {
            return Ok(false);
        }
        // Remembered before reading: a bad manifest is reported once, not on every tick.
        self.files_stamp = Some(stamp);
        self.files = manifest::read_path(path)?;
        Ok(true)
    }

    /// Reads the table again if it grew (or `forced`); whether it did.
    async fn table_changed(&mut self, forced: bool) -> Result<bool, crate::store::StoreError> {
        let Some((table, limit)) = &self.sources.table else { return Ok(false) };
        let fingerprint = within(*limit, table.fingerprint()).await?;
        if !forced && self.table_stamp == Some(fingerprint) {
            return Ok(false);
        }
        let stored = within(*limit, table.documents()).await?;
        self.table = stored
            .into_iter()
            .filter_map(|row| {
                manifest::checked(row.id, row.name, row.body)
                    .inspect_err(|error| tracing::error!(%error, "a stored trusted document is skipped"))
                    .ok()
            })
            .collect();
        self.table_stamp = Some(fingerprint);
        Ok(true)
    }

    /// Serves what the sources hold now, unless two of them disagree.
    fn publish(&self) -> Result<(), LoadError> {
        let set = build_set(self.files.iter().chain(&self.table))?;
        let count = set.by_id.len();
        self.documents.replace(set);
        tracing::info!(documents = count, "trusted documents loaded");
        Ok(())
    }
}

fn build_set<'d>(documents: impl Iterator<Item = &'d ManifestDocument>) -> Result<DocumentSet, LoadError> {
    let mut set = DocumentSet::default();
    for listed in documents {
        if let Some(known) = set.by_id.get(&listed.id) {
            if *known.text != *listed.text {
                return Err(LoadError::Conflict(listed.id.clone()));
            }
            continue;
        }
        let document = Arc::new(Document {
            id: listed.id.clone(),
            name: listed.name.clone(),
            text: listed.text.as_str().into(),
            sha256: sha256_hex(&listed.text),
        });
        set.by_sha256.insert(document.sha256.clone(), document.clone());
        set.by_id.insert(listed.id.clone(), document);
    }
    Ok(set)
}

/// The manifests under `path` as they are now (nothing for a path that cannot be read: reading
/// it says why).
fn stamp(path: &Path) -> Vec<FileStamp> {
    let files = if path.is_dir() {
        manifest::manifest_files(path).unwrap_or_default()
    } else {
        vec![path.to_owned()]
    };
    files
        .into_iter()
        .map(|file| {
            let metadata = std::fs::metadata(&file).ok();
            let modified = metadata.as_ref().and_then(|metadata| metadata.modified().ok());
            (file, modified, metadata.map_or(0, |metadata| metadata.len()))
        })
        .collect()
}

/// SIGHUP, the signal operators send a daemon to read its configuration again.
fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut signal) => {
            tokio::spawn(async move {
                while signal.recv().await.is_some() {
                    // A reload is pending already when the channel is full.
                    let _ = sender.try_send(());
                }
            });
        }
        Err(error) => {
            tracing::warn!(%error, "SIGHUP cannot be caught; trusted documents reload on change only")
        }
    }
    #[cfg(not(unix))]
    drop(sender);
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str, text: &str) -> ManifestDocument {
        ManifestDocument { id: id.into(), name: None, text: text.into() }
    }

    #[test]
    fn documents_are_found_by_id_with_or_without_sha256_by_the_hash_of_their_text_and_by_text() {
        let text = "{ accounts { id } }";
        let documents = TrustedDocuments::default();
        documents.replace(build_set([listed("relay-id", text)].iter()).unwrap());
        let hash = sha256_hex(text);
        assert_eq!(documents.get("relay-id").unwrap().id, "relay-id");
        assert_eq!(documents.get(&hash).unwrap().id, "relay-id");
        assert_eq!(documents.get(&format!("sha256:{hash}")).unwrap().id, "relay-id");
        assert_eq!(documents.with_text(&hash, text).unwrap().id, "relay-id");
        assert!(documents.with_text(&hash, "{ other }").is_none());
        assert!(documents.get("unknown").is_none());
    }

    #[tokio::test]
    async fn a_manifest_broken_on_reload_keeps_the_documents_served_until_a_good_one_replaces_them() {
        let path = std::env::temp_dir().join(format!("trusted-reload-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"a": "{ a }"}"#).unwrap();
        let documents = TrustedDocuments::default();
        let sources = Sources { path: Some(path.clone()), table: None };
        let mut loader = Loader { sources, documents: documents.clone(), ..Loader::default() };
        loader.reload(false).await.unwrap();
        assert!(documents.get("a").is_some());

        std::fs::write(&path, "not a manifest at all").unwrap();
        assert!(matches!(loader.reload(false).await, Err(LoadError::Manifest(_))));
        assert!(documents.get("a").is_some(), "the previous documents are kept");
        assert!(loader.reload(false).await.is_ok(), "an unchanged bad file is reported once");
        assert!(documents.get("a").is_some());

        std::fs::write(&path, r#"{"bee": "{ b }"}"#).unwrap();
        loader.reload(false).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(documents.get("a").is_none() && documents.get("bee").is_some());
    }

    #[test]
    fn one_id_with_two_texts_is_refused_and_the_same_document_twice_is_one() {
        let twice = [listed("a", "{ a }"), listed("a", "{ a }")];
        assert_eq!(build_set(twice.iter()).unwrap().by_id.len(), 1);
        let conflicting = [listed("a", "{ a }"), listed("a", "{ b }")];
        assert!(matches!(build_set(conflicting.iter()), Err(LoadError::Conflict(id)) if id == "a"));
    }
}
