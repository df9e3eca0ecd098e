//! The spool: snapshots the writer could not get into PostgreSQL before a shutdown, kept in a
//! local file and written at the next start, so a database outage during a deploy loses nothing.
//!
//! One file per shutdown, JSON lines of the domain type, written to a temporary name, synced
//! and renamed, so a file either is whole or is not there. Replaying is an idempotent upsert,
//! so a file replayed twice (a crash between writing its rows and deleting it) still leaves
//! each execution once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::IndexStore;
use crate::model::TaskExecution;
use crate::store::within;

const EXTENSION: &str = "jsonl";

/// Writes `snapshots` to a new file in `dir` (created if needed); its path.
pub fn write(dir: &Path, snapshots: &[Arc<TaskExecution>]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = format!(
        "snapshots-{}-{}.{EXTENSION}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id()
    );
    let path = dir.join(name);
    let temporary = path.with_extension("tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
    for snapshot in snapshots {
        serde_json::to_writer(&mut file, snapshot.as_ref())?;
        file.write_all(b"\n")?;
    }
    file.into_inner().map_err(|error| error.into_error())?.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

/// What a replay did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub files: usize,
    pub snapshots: usize,
}

/// Writes every spooled file in `dir` to the store (each batch within `limit`) and deletes it once written. A file that
/// cannot be read is renamed `*.unreadable` and logged, not deleted; one the store refuses now
/// is kept for the next start.
pub async fn replay(dir: &Path, store: &IndexStore, limit: Duration) -> std::io::Result<Replayed> {
    let mut replayed = Replayed::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(replayed),
        Err(error) => return Err(error),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == EXTENSION))
        .collect();
    files.sort();
    for path in files {
        let snapshots = match read(&path) {
            Ok(snapshots) => snapshots,
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "spooled snapshots unreadable; file kept as *.unreadable");
                std::fs::rename(&path, path.with_extension("unreadable"))?;
                continue;
            }
        };
        for batch in snapshots.chunks(500) {
            if let Err(error) = within(limit, store.upsert(batch)).await {
                tracing::error!(path = %path.display(), %error, "could not write spooled snapshots; kept for the next start");
                return Ok(replayed);
            }
        }
        std::fs::remove_file(&path)?;
        replayed.files += 1;
        replayed.snapshots += snapshots.len();
    }
    Ok(replayed)
}

fn read(path: &Path) -> std::io::Result<Vec<Arc<TaskExecution>>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).map(Arc::new).map_err(std::io::Error::other))
        .collect()
}
