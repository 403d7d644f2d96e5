//! Serving a file's bytes: one `bytes=` range (206), unsatisfiable ranges (416), `If-Range`,
//! `If-None-Match` (304). Shared by the original-file download and the media files (HLS
//! segments, progressive MP4, posters, captions).

use std::io::{Read, Seek, SeekFrom};

use actix_web::body::SizedStream;
use actix_web::http::{StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::Stream;

use crate::web::sendfile::{SendfileBody, Slot};

/// Bytes read from disk per chunk when streaming a large file.
const SERVE_CHUNK: usize = 512 * 1024;
/// Files (or ranges) up to this size are read in one blocking call and sent as one buffer:
/// fewer thread hand-offs per request, which is what HLS segments need.
const WHOLE_READ_LIMIT: u64 = 8 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// One `bytes=` range against a file of `size` bytes. Several ranges or a malformed header are
/// answered with the whole file, which RFC 9110 allows.
pub fn parse_range(value: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return RangeRequest::Whole,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            Err(_) => return RangeRequest::Whole,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else { return RangeRequest::Whole };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                    _ => return RangeRequest::Whole,
                }
            };
            if start >= size {
                return RangeRequest::Unsatisfiable;
            }
            (start, end)
        }
    };
    if size == 0 {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { start: parsed.0, end: parsed.1 }
}

/// What to answer for a GET of a file of `size` bytes whose entity tag is `etag`.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    NotModified,
    Unsatisfiable,
    /// Send `len` bytes from `start`; `partial` means 206 with `Content-Range`.
    Send {
        start: u64,
        len: u64,
        partial: bool,
    },
}

pub fn plan(req: &HttpRequest, size: u64, etag: &str) -> Plan {
    Conditions::of(req).plan(size, etag)
}

/// The request headers a [`Plan`] depends on, owned, so the plan can be made on the blocking
/// thread that opens the file.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    if_none_match: Option<String>,
    if_range: Option<String>,
    range: Option<String>,
}

impl Conditions {
    pub fn of(req: &HttpRequest) -> Conditions {
        Conditions::from_headers(req.headers())
    }

    pub fn from_headers(headers: &header::HeaderMap) -> Conditions {
        let get = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        Conditions {
            if_none_match: get(header::IF_NONE_MATCH),
            if_range: get(header::IF_RANGE),
            range: get(header::RANGE),
        }
    }

    pub fn plan(&self, size: u64, etag: &str) -> Plan {
        let none_match = self
            .if_none_match
            .as_deref()
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        if none_match {
            return Plan::NotModified;
        }
        // A range applies only to the representation the client already has part of.
        let if_range_ok = self.if_range.as_deref().is_none_or(|v| v.trim() == etag);
        let range = if if_range_ok { parse_range(self.range.as_deref(), size) } else { RangeRequest::Whole };
        plan_of(range, size)
    }
}

fn plan_of(range: RangeRequest, size: u64) -> Plan {
    match range {
        RangeRequest::Unsatisfiable => Plan::Unsatisfiable,
        RangeRequest::Whole => Plan::Send { start: 0, len: size, partial: false },
        RangeRequest::Part { start, end } => Plan::Send { start, len: end - start + 1, partial: true },
    }
}

/// A file opened, planned and — when what is asked for is small — already read, all in one
/// blocking call: one hand-off to the blocking pool per request instead of three.
pub struct Prepared {
    pub plan: Plan,
    pub size: u64,
    pub etag: String,
    body: PreparedBody,
}

enum PreparedBody {
    Nothing,
    Bytes(Bytes),
    File(std::fs::File),
}

/// The entity tag of a file that is replaced whole (renamed into place), never written in place.
fn file_etag(meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("\"{:x}-{modified:x}\"", meta.len())
}

/// Open `path` and prepare the answer to `cond`; `Ok(None)` when there is no such file.
/// Blocking: call it on the blocking pool.
pub fn prepare(path: &std::path::Path, cond: &Conditions) -> std::io::Result<Option<Prepared>> {
    prepare_for(path, cond, false)
}

/// [`prepare`], but when the connection will `sendfile` the bytes (`zero_copy`), nothing is
/// read: the answer keeps the open file.
pub fn prepare_for(
    path: &std::path::Path,
    cond: &Conditions,
    zero_copy: bool,
) -> std::io::Result<Option<Prepared>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let (size, etag) = (meta.len(), file_etag(&meta));
    let plan = cond.plan(size, &etag);
    let body = match plan {
        Plan::Send { start, len, .. } if len <= WHOLE_READ_LIMIT && !zero_copy => {
            file.seek(SeekFrom::Start(start))?;
            // Not `vec![0; len]`: zeroing a segment's worth of memory first costs a full pass.
            let mut buf = Vec::with_capacity(len as usize);
            (&mut file).take(len).read_to_end(&mut buf)?;
            if buf.len() as u64 != len {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            PreparedBody::Bytes(Bytes::from(buf))
        }
        Plan::Send { .. } => PreparedBody::File(file),
        _ => PreparedBody::Nothing,
    };
    Ok(Some(Prepared { plan, size, etag, body }))
}

/// Finish `res` with a [`Prepared`] file (see [`respond`]).
pub fn respond_prepared(res: HttpResponseBuilder, p: Prepared) -> HttpResponse {
    respond_prepared_via(res, p, None)
}

/// [`respond_prepared`]; with the connection's `sendfile` slot, an open file is sent by the
/// connection itself (see [`crate::web::sendfile`]).
pub fn respond_prepared_via(mut res: HttpResponseBuilder, p: Prepared, slot: Option<Slot>) -> HttpResponse {
    match p.body {
        PreparedBody::File(file) => match (slot, p.plan) {
            (Some(slot), Plan::Send { start, len, partial }) => {
                res.insert_header((header::ETAG, p.etag)).insert_header((header::ACCEPT_RANGES, "bytes"));
                if partial {
                    res.status(StatusCode::PARTIAL_CONTENT).insert_header((
                        header::CONTENT_RANGE,
                        format!("bytes {start}-{}/{}", start + len - 1, p.size),
                    ));
                }
                res.no_chunking(len).body(SendfileBody::new(slot, file, start, len))
            }
            (_, plan) => respond(res, plan, file, p.size, &p.etag),
        },
        body => {
            res.insert_header((header::ETAG, p.etag.clone())).insert_header((header::ACCEPT_RANGES, "bytes"));
            match (p.plan, body) {
                (Plan::Send { start, len, partial }, PreparedBody::Bytes(bytes)) => {
                    if partial {
                        res.status(StatusCode::PARTIAL_CONTENT).insert_header((
                            header::CONTENT_RANGE,
                            format!("bytes {start}-{}/{}", start + len - 1, p.size),
                        ));
                    }
                    res.body(bytes)
                }
                (Plan::Unsatisfiable, _) => res
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .insert_header((header::CONTENT_RANGE, format!("bytes */{}", p.size)))
                    .finish(),
                _ => res.status(StatusCode::NOT_MODIFIED).finish(),
            }
        }
    }
}

/// Finish `res` (which already carries the caller's headers: type, caching, disposition) with
/// the bytes `plan` asks for. Sets `ETag` and `Accept-Ranges` itself.
pub fn respond(
    mut res: HttpResponseBuilder,
    plan: Plan,
    file: std::fs::File,
    size: u64,
    etag: &str,
) -> HttpResponse {
    res.insert_header((header::ETAG, etag.to_string())).insert_header((header::ACCEPT_RANGES, "bytes"));
    match plan {
        Plan::NotModified => res.status(StatusCode::NOT_MODIFIED).finish(),
        Plan::Unsatisfiable => res
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
            .finish(),
        Plan::Send { start, len, partial } => {
            if partial {
                res.status(StatusCode::PARTIAL_CONTENT).insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {start}-{}/{size}", start + len - 1),
                ));
            }
            res.body(SizedStream::new(len, Box::pin(file_stream(file, start, len))))
        }
    }
}

/// The bytes `[start, start + len)` of `file`, read on the blocking pool. Small reads are one
/// blocking call; large ones stream in chunks through a short channel (back-pressure: a slow
/// client holds at most a few chunks in memory).
pub fn file_stream(
    mut file: std::fs::File,
    start: u64,
    len: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let chunk = if len <= WHOLE_READ_LIMIT { len as usize } else { SERVE_CHUNK };
        let mut left = len;
        while left > 0 {
            let want = (left as usize).min(chunk);
            let mut buf = vec![0u8; want];
            match file.read_exact(&mut buf) {
                Ok(()) => {
                    left -= want as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), RangeRequest::Part { start: 0, end: 4 });
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeRequest::Part { start: 5, end: 9 });
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeRequest::Part { start: 7, end: 9 });
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeRequest::Part { start: 0, end: 9 });
        assert_eq!(parse_range(Some("bytes=8-100"), 10), RangeRequest::Part { start: 8, end: 9 });
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Whole);
    }

    #[test]
    fn conditional_requests() {
        use actix_web::test::TestRequest;
        let etag = "\"abc\"";
        let r = TestRequest::default().insert_header((header::RANGE, "bytes=2-3")).to_http_request();
        assert_eq!(plan(&r, 10, etag), Plan::Send { start: 2, len: 2, partial: true });
        let r = TestRequest::default()
            .insert_header((header::RANGE, "bytes=2-3"))
            .insert_header((header::IF_RANGE, "\"old\""))
            .to_http_request();
        assert_eq!(plan(&r, 10, etag), Plan::Send { start: 0, len: 10, partial: false }, "stale If-Range");
        let r = TestRequest::default()
            .insert_header((header::RANGE, "bytes=2-3"))
            .insert_header((header::IF_RANGE, etag))
            .to_http_request();
        assert_eq!(plan(&r, 10, etag), Plan::Send { start: 2, len: 2, partial: true });
        let r = TestRequest::default().insert_header((header::IF_NONE_MATCH, etag)).to_http_request();
        assert_eq!(plan(&r, 10, etag), Plan::NotModified);
        let r = TestRequest::default().insert_header((header::RANGE, "bytes=20-")).to_http_request();
        assert_eq!(plan(&r, 10, etag), Plan::Unsatisfiable);
    }
}
