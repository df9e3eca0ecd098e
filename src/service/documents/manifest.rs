//! Manifests of trusted documents, in the three formats frontends' build tools write:
//!
//! - GraphQL Code Generator's client preset (`persistedDocuments: true`):
//!   `persisted-documents.json`, `{"sha256:<hex>": "<document>"}`;
//! - Relay's `persisted_queries.json`, `{"<id>": "<document>"}` (the same shape);
//! - Apollo's persisted-query manifest, `{"format": "apollo-persisted-query-manifest",
//!   "version": 1, "operations": [{"id", "name", "type", "body"}]}`.
//!
//! Each document is parsed here, once, so that a manifest holding one that is not GraphQL is
//! refused whole when it is read rather than failing a client later.

use std::path::Path;

use async_graphql::parser::parse_query;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The prefix of a document id that is the SHA-256 of its text (GraphQL over HTTP, Appendix A);
/// codegen writes it, clients send ids with or without it.
const SHA256_PREFIX: &str = "sha256:";

/// One document as a manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestDocument {
    /// Without a `sha256:` prefix ([`document_id`]).
    pub id: String,
    /// The operation's name: the manifest's, else the document's first named operation.
    pub name: Option<String>,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("not a manifest of trusted documents: {0}")]
    Format(String),
    #[error("document {id}: {message}")]
    Document { id: String, message: String },
}

/// A document id as the set keys it: without the `sha256:` prefix some clients and tools add.
pub fn document_id(id: &str) -> &str {
    id.strip_prefix(SHA256_PREFIX).unwrap_or(id)
}

/// The hex SHA-256 of a document's text: what Apollo's persisted queries and `sha256:` ids name.
pub fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// The manifest in `path`, or every `*.json` manifest in it when it is a directory (sorted by
/// name, so that errors and logs come in a stable order).
pub fn read_path(path: &Path) -> Result<Vec<ManifestDocument>, ManifestError> {
    let file_error = |path: &Path, error: std::io::Error| ManifestError::File {
        path: path.display().to_string(),
        message: error.to_string(),
    };
    if !path.is_dir() {
        let bytes = std::fs::read(path).map_err(|error| file_error(path, error))?;
        return parse(&bytes).map_err(|error| ManifestError::File {
            path: path.display().to_string(),
            message: error.to_string(),
        });
    }
    let mut documents = Vec::new();
    for file in manifest_files(path).map_err(|error| file_error(path, error))? {
        documents.extend(read_path(&file)?);
    }
    Ok(documents)
}

/// The `*.json` files directly in `dir`, sorted.
pub fn manifest_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|extension| extension == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyManifest {
    Apollo(ApolloManifest),
    /// Codegen's client preset and Relay: id → text.
    Map(std::collections::BTreeMap<String, String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApolloManifest {
    format: String,
    version: u32,
    operations: Vec<ApolloOperation>,
}

#[derive(Deserialize)]
struct ApolloOperation {
    id: String,
    name: Option<String>,
    body: String,
}

const APOLLO_FORMAT: &str = "apollo-persisted-query-manifest";

/// The documents of one manifest, in any of the three formats.
pub fn parse(bytes: &[u8]) -> Result<Vec<ManifestDocument>, ManifestError> {
    let manifest: AnyManifest = serde_json::from_slice(bytes).map_err(|_| {
        ManifestError::Format(
            "expected {\"<id>\": \"<document>\", …} (GraphQL Code Generator, Relay) or Apollo's \
             {\"format\": \"apollo-persisted-query-manifest\", \"version\": 1, \"operations\": […]}"
                .into(),
        )
    })?;
    let listed: Vec<(String, Option<String>, String)> = match manifest {
        AnyManifest::Apollo(apollo) => {
            if apollo.format != APOLLO_FORMAT || apollo.version != 1 {
                return Err(ManifestError::Format(format!(
                    "format {:?} version {}; only {APOLLO_FORMAT:?} version 1 is known",
                    apollo.format, apollo.version
                )));
            }
            apollo
                .operations
                .into_iter()
                .map(|operation| (operation.id, operation.name, operation.body))
                .collect()
        }
        AnyManifest::Map(map) => map.into_iter().map(|(id, text)| (id, None, text)).collect(),
    };
    listed.into_iter().map(|(id, name, text)| checked(id, name, text)).collect()
}

/// One listed document, checked: it parses, and an id that claims to be its SHA-256 is.
pub(super) fn checked(
    id: String,
    name: Option<String>,
    text: String,
) -> Result<ManifestDocument, ManifestError> {
    let invalid = |message: String| ManifestError::Document { id: id.clone(), message };
    let parsed = parse_query(&text).map_err(|error| invalid(format!("does not parse: {error}")))?;
    if let Some(hash) = id.strip_prefix(SHA256_PREFIX) {
        if hash != sha256_hex(&text) {
            return Err(invalid("its id says sha256, and it is not the SHA-256 of its text".into()));
        }
    }
    let name =
        name.or_else(|| parsed.operations.iter().find_map(|(name, _)| name.map(|name| name.to_string())));
    Ok(ManifestDocument { id: document_id(&id).to_owned(), name, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "query Status($arn: ID!) { taskExecution(arn: $arn) { status } }";

    #[test]
    fn codegens_client_preset_manifest_is_read_with_its_sha256_ids_checked() {
        let id = format!("sha256:{}", sha256_hex(STATUS));
        let manifest = serde_json::json!({ &id: STATUS }).to_string();
        let documents = parse(manifest.as_bytes()).unwrap();
        let expected =
            ManifestDocument { id: sha256_hex(STATUS), name: Some("Status".into()), text: STATUS.into() };
        assert_eq!(documents, [expected]);

        let lying = serde_json::json!({ format!("sha256:{}", "0".repeat(64)): STATUS }).to_string();
        let error = parse(lying.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("not the SHA-256"), "{error}");
    }

    #[test]
    fn relays_manifest_keeps_its_own_ids_and_anonymous_operations_have_no_name() {
        let manifest =
            r#"{"3be4abb81fa595e25eb725b2c6a87508": "{ executionHistory(first: 1) { edges { cursor } } }"}"#;
        let documents = parse(manifest.as_bytes()).unwrap();
        assert_eq!(documents[0].id, "3be4abb81fa595e25eb725b2c6a87508");
        assert_eq!(documents[0].name, None);
    }

    #[test]
    fn apollos_manifest_is_read_with_its_names() {
        let manifest = serde_json::json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{ "id": sha256_hex(STATUS), "name": "Status", "type": "query", "body": STATUS }],
        })
        .to_string();
        let documents = parse(manifest.as_bytes()).unwrap();
        assert_eq!(documents[0].id, sha256_hex(STATUS));
        assert_eq!(documents[0].name.as_deref(), Some("Status"));

        let version_2 = manifest.replace("\"version\":1", "\"version\":2");
        assert!(parse(version_2.as_bytes()).unwrap_err().to_string().contains("version 2"));
    }

    #[test]
    fn a_manifest_that_is_not_one_or_holds_a_document_that_does_not_parse_is_refused() {
        for bad in [&b"[]"[..], b"{\"a\": 1}", b"not json", b"{\"format\": \"other\", \"operations\": []}"] {
            assert!(matches!(parse(bad), Err(ManifestError::Format(_))), "{}", String::from_utf8_lossy(bad));
        }
        let broken = parse(br#"{"abc": "query { taskExecution("}"#).unwrap_err().to_string();
        assert!(broken.starts_with("document abc: does not parse"), "{broken}");
    }

    #[test]
    fn a_directory_is_read_as_every_json_manifest_in_it() {
        let dir = std::env::temp_dir().join(format!("manifests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.json"), serde_json::json!({ "one": STATUS }).to_string()).unwrap();
        std::fs::write(dir.join("b.json"), serde_json::json!({ "two": "{ accounts { id } }" }).to_string())
            .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        let ids: Vec<String> = read_path(&dir).unwrap().into_iter().map(|document| document.id).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ids, ["one", "two"]);
    }

    #[test]
    fn ids_are_keyed_without_the_sha256_prefix() {
        assert_eq!(document_id("sha256:abc"), "abc");
        assert_eq!(document_id("abc"), "abc");
    }
}
