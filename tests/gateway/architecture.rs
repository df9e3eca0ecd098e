//! The rooms of `src/` and which others each may import (README, "How it is built"): arrows run
//! one way, from the HTTP server down to the domain types. A `use crate::…` (or a path through
//! `crate::`) outside a room's list fails here, naming the file.

use std::collections::BTreeSet;
use std::path::Path;

/// Each room and the rooms it may import; a room not listed may import nothing of the crate.
const MAY_IMPORT: [(&str, &[&str]); 11] = [
    ("config", &["model"]),
    ("request", &["error", "model"]),
    ("cache", &["config", "error", "metrics", "model"]),
    ("datasync", &["config", "error", "metrics", "model", "request", "telemetry"]),
    ("store", &["error", "model", "request"]),
    (
        "service",
        &["cache", "config", "datasync", "error", "metrics", "model", "request", "store", "telemetry"],
    ),
    ("auth", &["config", "error", "metrics", "model", "request", "store"]),
    ("graphql", &["config", "error", "metrics", "model", "request", "service"]),
    ("http", &["auth", "config", "error", "graphql", "metrics", "model", "request", "service", "telemetry"]),
    // Start-up wires every room together; the simulator stands in for DataSync.
    ("app", &["*"]),
    ("main", &["*"]),
];

/// Rooms at the bottom: they import nothing of the crate.
const FOUNDATIONS: [&str; 5] = ["model", "error", "metrics", "telemetry", "simulator"];

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The rooms of the crate a file's code (not its comments, not its unit tests) names.
fn imported_rooms(code: &str) -> BTreeSet<String> {
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    let mut rooms = BTreeSet::new();
    for line in code.lines().filter(|line| !line.trim_start().starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            let preceded_by_word =
                line[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
            if preceded_by_word {
                continue; // `datasync_gateway::…`, `$crate::…`
            }
            let room: String = line[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            rooms.insert(room);
        }
    }
    rooms
}

#[test]
fn each_room_imports_only_the_rooms_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let room = relative.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        if room == "lib" {
            continue;
        }
        let allowed: &[&str] =
            MAY_IMPORT.iter().find(|(name, _)| *name == room).map_or(&[], |(_, allowed)| allowed);
        assert!(
            allowed.len() + usize::from(FOUNDATIONS.contains(&room.as_str())) > 0 || room == "lib",
            "src/{relative}: the room `{room}` is not in MAY_IMPORT or FOUNDATIONS; say where it sits"
        );
        for imported in imported_rooms(&std::fs::read_to_string(file).unwrap()) {
            if imported != room && !allowed.contains(&"*") && !allowed.contains(&imported.as_str()) {
                violations.push(format!("src/{relative} ({room}) imports crate::{imported}"));
            }
        }
    }
    assert!(violations.is_empty(), "imports against the arrows:\n{}", violations.join("\n"));
}

#[test]
fn the_check_sees_an_import_and_ignores_comments_and_other_crates() {
    let code = "use crate::store::Database;\n// see crate::graphql\nuse datasync_gateway::http;\nfn f() { crate::model::Long(1); }\n#[cfg(test)]\nmod tests { use crate::app; }";
    let rooms: Vec<String> = imported_rooms(code).into_iter().collect();
    assert_eq!(rooms, ["model", "store"]);
}
