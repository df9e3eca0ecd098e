//! A minimal S3 (REST, path-style, XML) over the task reports the fleet has written
//! ([`super::reports`]): `ListObjectsV2` and `GetObject`, enough for the real aws-sdk-s3 with
//! `force_path_style(true)` and the simulator's URL as its endpoint.
//!
//! - `GET /{bucket}?list-type=2[&prefix=][&continuation-token=][&start-after=][&max-keys=]`:
//!   the objects that exist now, in key order, at most `max-keys` (default and limit 1000) a
//!   page. `delimiter` is not supported (501 NotImplemented).
//! - `GET /{bucket}/{key}`: the body, `application/json`.
//!
//! A bucket belongs to one account ([`reports::bucket_account`]): a request signed by another
//! account's key, or not signed, is refused with 403 AccessDenied, as is every request to a
//! bucket the admin endpoint `PUT /_simulator/buckets` denied. A bucket no account has is 404
//! NoSuchBucket; a key that does not exist (yet) is 404 NoSuchKey.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};

use super::reports::{self, Object, Report};
use super::{lock, HttpResponse, State};

/// Keys a ListObjectsV2 page holds at most, as in S3.
const MAX_KEYS: usize = 1000;

/// The S3 operation a request is, for counting calls; `None` if the simulator has no such
/// operation.
pub(super) fn operation(method: &Method, path: &str, query: Option<&str>) -> Option<&'static str> {
    if method != Method::GET {
        return None;
    }
    match path.trim_start_matches('/').split_once('/') {
        _ if path.trim_start_matches('/').is_empty() => None,
        None | Some((_, ""))
            if query.is_some_and(|query| query_map(query).get("list-type").is_some_and(|t| t == "2")) =>
        {
            Some("ListObjectsV2")
        }
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Some("GetObject"),
        _ => None,
    }
}

/// Answers an S3 request; `account` is the signer's (`None`: not signed).
pub(super) fn handle(
    state: &State,
    operation: &str,
    path: &str,
    query: Option<&str>,
    account: Option<&str>,
    now: DateTime<Utc>,
) -> HttpResponse {
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let (bucket, key) = (percent_decode(bucket), percent_decode(key));
    let resource = if key.is_empty() { format!("/{bucket}") } else { format!("/{bucket}/{key}") };
    if lock(&state.denied_buckets).contains(&bucket) {
        return error(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied", &resource);
    }
    let Some(owner) = reports::bucket_account(&bucket).filter(|owner| {
        lock(&state.fleet).executions.iter().any(|execution| execution.arn.split(':').nth(4) == Some(*owner))
    }) else {
        return error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
            &resource,
        );
    };
    if account != Some(owner) {
        return error(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied", &resource);
    }
    // The reports written by now (small descriptions; the bodies are generated below, outside
    // the fleet's lock).
    let written: Vec<Report> = {
        let fleet = lock(&state.fleet);
        (fleet.executions.iter())
            .filter(|execution| execution.arn.split(':').nth(4) == Some(owner))
            .filter_map(|execution| fleet.written_report(execution, now))
            .collect()
    };
    match operation {
        "ListObjectsV2" => list_objects(&bucket, &written, &query_map(query.unwrap_or_default()), &resource),
        _ => {
            let corrupt = lock(&state.corrupt_objects).contains(&key);
            get_object(&key, &written, corrupt, &resource)
        }
    }
}

fn list_objects(
    bucket: &str,
    written: &[Report],
    query: &BTreeMap<String, String>,
    resource: &str,
) -> HttpResponse {
    if query.contains_key("delimiter") {
        return error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", "delimiter is not supported", resource);
    }
    let prefix = query.get("prefix").map(String::as_str).unwrap_or_default();
    let max_keys = match query.get("max-keys").map(|max| max.parse::<usize>()) {
        None => MAX_KEYS,
        Some(Ok(max)) => max.min(MAX_KEYS),
        Some(Err(_)) => {
            return error(StatusCode::BAD_REQUEST, "InvalidArgument", "max-keys is not a number", resource)
        }
    };
    // The token is the last key of the previous page, hex-encoded (opaque to the client).
    let after = match query.get("continuation-token") {
        Some(token) => match unhex(token) {
            Some(key) if !token.is_empty() => key,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "The continuation token provided is incorrect",
                    resource,
                )
            }
        },
        None => query.get("start-after").cloned().unwrap_or_default(),
    };
    let mut matching: Vec<(&Report, Object)> = (written.iter())
        .flat_map(|report| report.objects().into_iter().map(move |object| (report, object)))
        .filter(|(_, object)| object.key.starts_with(prefix) && object.key.as_str() > after.as_str())
        .collect();
    matching.sort_by(|(_, a), (_, b)| a.key.cmp(&b.key));
    let truncated = matching.len() > max_keys;
    matching.truncate(max_keys);

    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    xml.push_str(&format!(
        "<Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        escape(bucket),
        escape(prefix),
        matching.len()
    ));
    for (report, object) in &matching {
        let body = report.body(object);
        xml.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            escape(&object.key),
            report.written_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            escape(&etag(&body)),
            body.len()
        ));
    }
    if let (true, Some((_, last))) = (truncated, matching.last()) {
        xml.push_str(&format!("<NextContinuationToken>{}</NextContinuationToken>", hex(&last.key)));
    }
    if let Some(token) = query.get("continuation-token") {
        xml.push_str(&format!("<ContinuationToken>{}</ContinuationToken>", escape(token)));
    }
    if let Some(start_after) = query.get("start-after") {
        xml.push_str(&format!("<StartAfter>{}</StartAfter>", escape(start_after)));
    }
    xml.push_str("</ListBucketResult>");
    response(StatusCode::OK, "application/xml", Bytes::from(xml))
}

/// The object's body, or (`corrupt`) its first half.
fn get_object(key: &str, written: &[Report], corrupt: bool, resource: &str) -> HttpResponse {
    let exec_id = reports::parse_key(key).map(|parsed| parsed.exec_id);
    let found = (written.iter())
        .filter(|report| Some(report.exec_id()) == exec_id)
        .find_map(|report| Some((report, report.objects().into_iter().find(|object| object.key == key)?)));
    let Some((report, object)) = found else {
        return error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.", resource);
    };
    let mut body = report.body(&object);
    if corrupt {
        body.truncate(body.len() / 2);
    }
    let mut response = response(StatusCode::OK, "application/json", Bytes::new());
    let headers = response.headers_mut();
    headers.insert("etag", etag(&body).parse().expect("valid header"));
    let modified = report.written_at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    headers.insert("last-modified", modified.parse().expect("valid header"));
    *response.body_mut() = Full::new(Bytes::from(body));
    response
}

/// A quoted hex digest of the body, as long as S3's MD5 ETags.
fn etag(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    format!("\"{:032x}\"", &digest[..16].iter().fold(0_u128, |n, b| n << 8 | u128::from(*b)))
}

fn response(status: StatusCode, content_type: &str, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", content_type.parse().expect("valid header"));
    headers.insert("x-amz-request-id", "SIMULATED".parse().expect("valid header"));
    response
}

/// An S3 error: the SDK reads `Code` and `Message`.
pub(super) fn error(status: StatusCode, code: &str, message: &str, resource: &str) -> HttpResponse {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>SIMULATED</RequestId></Error>",
        escape(message),
        escape(resource)
    );
    response(status, "application/xml", Bytes::from(xml))
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    serde_urlencoded::from_str(query).unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(token: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| token.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A path segment's `%XX` escapes decoded (the SDK encodes keys with `/` kept).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
            .flatten();
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart_by_method_path_and_query() {
        let get = Method::GET;
        assert_eq!(operation(&get, "/bucket", Some("list-type=2&prefix=a")), Some("ListObjectsV2"));
        assert_eq!(operation(&get, "/bucket/", Some("list-type=2")), Some("ListObjectsV2"));
        assert_eq!(operation(&get, "/bucket/a/b.json", Some("x-id=GetObject")), Some("GetObject"));
        assert_eq!(operation(&get, "/bucket/a/b.json", None), Some("GetObject"));
        assert_eq!(operation(&get, "/bucket", None), None);
        assert_eq!(operation(&get, "/", Some("list-type=2")), None);
        assert_eq!(operation(&Method::PUT, "/bucket/key", None), None);
    }

    #[test]
    fn tokens_and_escapes_round_trip() {
        let key = "reports/Detailed-Reports/task-1/exec-1/x.json";
        assert_eq!(unhex(&hex(key)).as_deref(), Some(key));
        assert_eq!(unhex("zz"), None);
        assert_eq!(percent_decode("a%2Fb%20c/d"), "a/b c/d");
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }
}
