//! Opaque, tamper-evident history cursors.
//!
//! A cursor names a position (the time a row is ordered by and its ARN) and the query it belongs to
//! (a digest of filter and order), so it cannot be replayed against a different query. The
//! checksum catches edits; it is not a secret, and a forged cursor could only ever point at a
//! different position of a query the client may run anyway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"datasync-gateway/history-cursor/v1";

/// A position in one history query's order: the row's time in that order (its start, or its
/// end) and its ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub at: DateTime<Utc>,
    pub execution_arn: String,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The position's time in microseconds, PostgreSQL's precision.
    t: i64,
    a: String,
    q: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("the cursor is not one this gateway issued (or it was altered); start again without it")]
    Invalid,
    #[error("the cursor belongs to a different filter or order; use cursors only with the query that returned them")]
    OtherQuery,
}

/// Encodes `position` for the query identified by `query_digest`.
pub fn encode(position: &Position, query_digest: &str) -> String {
    let payload = Payload {
        t: position.at.timestamp_micros(),
        a: position.execution_arn.clone(),
        q: query_digest.to_owned(),
    };
    let json = serde_json::to_vec(&payload).expect("a cursor payload serialises");
    let mut bytes = checksum(&json).to_vec();
    bytes.extend_from_slice(&json);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode(cursor: &str, query_digest: &str) -> Result<Position, CursorError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError::Invalid)?;
    if bytes.len() < 8 || bytes.len() > 1024 {
        return Err(CursorError::Invalid);
    }
    let (sum, json) = bytes.split_at(8);
    if sum != checksum(json) {
        return Err(CursorError::Invalid);
    }
    let payload: Payload = serde_json::from_slice(json).map_err(|_| CursorError::Invalid)?;
    if payload.q != query_digest {
        return Err(CursorError::OtherQuery);
    }
    // Years 1 to 9999: anything else is not a position this gateway issued, and PostgreSQL
    // would reject some of it as out of range.
    const RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800_000_000..=253_402_300_799_999_999;
    if !RANGE.contains(&payload.t) {
        return Err(CursorError::Invalid);
    }
    let at = DateTime::from_timestamp_micros(payload.t).ok_or(CursorError::Invalid)?;
    Ok(Position { at, execution_arn: payload.a })
}

/// A short digest naming a query (its filter and order), for binding cursors to it. It hashes
/// a canonical JSON form, so it stays the same across releases that do not change the query.
pub fn digest(query: &impl Serialize) -> String {
    let canonical = serde_json::to_vec(query).expect("a query serialises");
    let hash = Sha256::new().chain_update(DOMAIN).chain_update(canonical).finalize();
    URL_SAFE_NO_PAD.encode(&hash[..9])
}

fn checksum(json: &[u8]) -> [u8; 8] {
    let hash = Sha256::new().chain_update(DOMAIN).chain_update(json).finalize();
    hash[..8].try_into().expect("8 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Position {
        Position {
            at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            execution_arn: "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60101".into(),
        }
    }

    #[test]
    fn round_trips() {
        let cursor = encode(&position(), "q1");
        assert_eq!(decode(&cursor, "q1"), Ok(position()));
    }

    #[test]
    fn rejects_edits_garbage_and_other_queries() {
        let cursor = encode(&position(), "q1");
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode(bytes), "q1"), Err(CursorError::Invalid));
        assert_eq!(decode("not a cursor!", "q1"), Err(CursorError::Invalid));
        assert_eq!(decode("", "q1"), Err(CursorError::Invalid));
        assert_eq!(decode(&cursor, "q2"), Err(CursorError::OtherQuery));
    }

    #[test]
    fn rejects_well_formed_cursors_outside_years_1_to_9999() {
        for t in [i64::MIN, -1_000_000_000_000_000_000, 253_402_300_800_000_000] {
            let json = serde_json::to_vec(&Payload { t, a: "x".into(), q: "q1".into() }).unwrap();
            let mut bytes = checksum(&json).to_vec();
            bytes.extend_from_slice(&json);
            assert_eq!(decode(&URL_SAFE_NO_PAD.encode(bytes), "q1"), Err(CursorError::Invalid), "{t}");
        }
    }
}
