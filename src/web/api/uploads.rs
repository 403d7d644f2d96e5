//! tus 1.0.0 over HTTP at `/api/v1/uploads` (see `crate::ingest::tus` for the rules). Only the
//! uploader (or an administrator) may see or touch an upload; to anyone else it does not exist.

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};

use crate::App;
use crate::accounts::grants::Role;
use crate::ingest::IngestError;
use crate::ingest::tus::{self, Checksum, NewUpload, PatchHeaders, Upload};
use crate::web::auth::{CurrentUser, require_role};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, Endpoint as E, post};

/// tus's status for a checksum that does not match (checksum extension).
const CHECKSUM_MISMATCH: u16 = 460;
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        E::new(
            Method::OPTIONS,
            "/api/v1/uploads",
            Access::Public,
            "tus 1.0.0 discovery: version, extensions, maximum size, checksum algorithms",
            options,
        ),
        post(
            "/api/v1/uploads",
            Access::Category(Role::Contribute),
            "tus creation (and creation-with-upload): Upload-Length (or Upload-Defer-Length: 1), Upload-Metadata \
             with filename, category, sha256 (hex of the whole file) and optional title. 201 with Location and \
             X-Media-Id",
            create,
        ),
        E::new(
            Method::HEAD,
            "/api/v1/uploads/{id}",
            Access::SignedIn,
            "tus: the upload's offset and length (the uploader or an administrator)",
            head,
        ),
        E::new(
            Method::PATCH,
            "/api/v1/uploads/{id}",
            Access::SignedIn,
            "tus: append bytes at Upload-Offset (optional Upload-Checksum sha1/sha256; 460 on a mismatch; \
             Upload-Length once for a deferred length). The last chunk stores the file after checking its sha256 \
             (460 when it differs)",
            patch,
        ),
        E::new(
            Method::DELETE,
            "/api/v1/uploads/{id}",
            Access::SignedIn,
            "tus termination: cancel the upload and remove its bytes (the uploader or an administrator)",
            delete,
        ),
    ]
}

fn header_str(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string())
}

fn tus_response(status: StatusCode) -> HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    res.insert_header(("Tus-Resumable", tus::VERSION)).insert_header((header::CACHE_CONTROL, "no-store"));
    res
}

/// RFC 9110 date, as `Upload-Expires` wants it.
fn http_date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

/// Every request but OPTIONS states the protocol version it speaks.
fn check_version(req: &HttpRequest) -> Result<(), WebError> {
    match header_str(req, "tus-resumable").as_deref() {
        Some(tus::VERSION) => Ok(()),
        _ => Err(WebError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus-version",
            "Send `Tus-Resumable: 1.0.0`: this server speaks tus version 1.0.0.",
        )),
    }
}

fn parse_u64(req: &HttpRequest, name: &str) -> Result<Option<u64>, WebError> {
    match header_str(req, name) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            WebError::from(IngestError::BadRequest(format!("{name} must be a non-negative whole number")))
        }),
    }
}

/// Ingest errors in tus terms: hash mismatches are 460.
fn tus_error(e: IngestError) -> WebError {
    let mut w = WebError::from(e);
    if matches!(w.code, "checksum-mismatch" | "digest-mismatch")
        && let Ok(s) = StatusCode::from_u16(CHECKSUM_MISMATCH)
    {
        w.status = s;
    }
    w
}

async fn options(app: web::Data<App>) -> HttpResponse {
    tus_response(StatusCode::NO_CONTENT)
        .insert_header(("Tus-Version", tus::VERSION))
        .insert_header(("Tus-Extension", tus::EXTENSIONS))
        .insert_header(("Tus-Max-Size", app.config.uploads.max_size_bytes.to_string()))
        .insert_header(("Tus-Checksum-Algorithm", tus::CHECKSUM_ALGORITHMS))
        .finish()
}

fn is_offset_stream(req: &HttpRequest) -> bool {
    header_str(req, "content-type").is_some_and(|v| v.eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

async fn create(
    app: web::Data<App>,
    user: CurrentUser,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    check_version(&req)?;
    let deferred = match header_str(&req, "upload-defer-length").as_deref() {
        None => false,
        Some("1") => true,
        Some(_) => {
            return Err(IngestError::BadRequest("Upload-Defer-Length must be 1".into()).into());
        }
    };
    let length = match (parse_u64(&req, "upload-length")?, deferred) {
        (Some(n), false) => n,
        (None, true) => 0,
        (Some(_), true) => {
            return Err(IngestError::BadRequest(
                "send either Upload-Length or Upload-Defer-Length: 1, not both".into(),
            )
            .into());
        }
        (None, false) => {
            return Err(IngestError::BadRequest(
                "Upload-Length is required (or Upload-Defer-Length: 1 to send it later)".into(),
            )
            .into());
        }
    };
    let mut new = NewUpload::from_headers(length, &header_str(&req, "upload-metadata").unwrap_or_default())?;
    new.deferred = deferred;
    require_role(&app, Some(&user), new.category, Role::Contribute).await?;
    let actor = user.actor();
    let (upload, item) = tus::create(&app, &actor, new).await?;
    let mut offset = 0;
    let mut expires_at = upload.expires_at;
    let mut status = item.status;
    let has_body = parse_u64(&req, "content-length")?.is_some_and(|n| n > 0)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    if has_body && is_offset_stream(&req) {
        // creation-with-upload: the body is the first chunk.
        let checksum = header_str(&req, "upload-checksum").map(|h| Checksum::parse(&h)).transpose()?;
        let patch = PatchHeaders { offset: 0, checksum, length: None };
        let done = tus::append(&app, &actor, upload.clone(), patch, body).await.map_err(tus_error)?;
        offset = done.offset;
        expires_at = done.expires_at;
        if let Some(item) = done.completed {
            status = item.status;
        }
    }
    Ok(tus_response(StatusCode::CREATED)
        .insert_header((header::LOCATION, format!("/api/v1/uploads/{}", upload.id)))
        .insert_header(("X-Media-Id", item.id.to_string()))
        .insert_header(("Upload-Offset", offset.to_string()))
        .insert_header(("Upload-Expires", http_date(expires_at)))
        .insert_header(("X-Media-Status", status.as_str()))
        .finish())
}

/// The upload, if it is the caller's (or the caller is an administrator) and not expired.
async fn own_upload(app: &App, user: &CurrentUser, id: String) -> Result<Upload, WebError> {
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(IngestError::UploadNotFound.into());
    }
    let upload = app.db.read(move |c| tus::get(c, &id)).await?.ok_or(IngestError::UploadNotFound)?;
    let mine = upload.owner_id == Some(user.user.id) || user.user.is_admin;
    if !mine || upload.expires_at <= app.clock.now() {
        return Err(IngestError::UploadNotFound.into());
    }
    Ok(upload)
}

async fn head(
    app: web::Data<App>,
    user: CurrentUser,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    check_version(&req)?;
    let upload = own_upload(&app, &user, path.into_inner()).await?;
    let mut res = tus_response(StatusCode::OK);
    res.insert_header(("Upload-Offset", tus::offset(&app, &upload).to_string()))
        .insert_header(("Upload-Expires", http_date(upload.expires_at)))
        .insert_header(("X-Media-Id", upload.media_id.to_string()));
    if upload.length_deferred {
        res.insert_header(("Upload-Defer-Length", "1"));
    } else {
        res.insert_header(("Upload-Length", upload.length.to_string()));
    }
    if !upload.metadata.is_empty() {
        res.insert_header(("Upload-Metadata", upload.metadata.clone()));
    }
    Ok(res.finish())
}

async fn patch(
    app: web::Data<App>,
    user: CurrentUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    check_version(&req)?;
    let upload = own_upload(&app, &user, path.into_inner()).await?;
    if !is_offset_stream(&req) {
        return Err(WebError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "wrong-content-type",
            "A tus PATCH must have `Content-Type: application/offset+octet-stream`.",
        ));
    }
    let offset = parse_u64(&req, "upload-offset")?
        .ok_or_else(|| WebError::from(IngestError::BadRequest("Upload-Offset is required".into())))?;
    let checksum = header_str(&req, "upload-checksum").map(|h| Checksum::parse(&h)).transpose()?;
    let length = parse_u64(&req, "upload-length")?;
    let media_id = upload.media_id;
    let patch = PatchHeaders { offset, checksum, length };
    let done = tus::append(&app, &user.actor(), upload, patch, body).await.map_err(tus_error)?;
    let mut res = tus_response(StatusCode::NO_CONTENT);
    res.insert_header(("Upload-Offset", done.offset.to_string()))
        .insert_header(("Upload-Expires", http_date(done.expires_at)))
        .insert_header(("X-Media-Id", media_id.to_string()));
    if let Some(item) = &done.completed {
        res.insert_header(("X-Media-Status", item.status.as_str()));
    }
    Ok(res.finish())
}

async fn delete(
    app: web::Data<App>,
    user: CurrentUser,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    check_version(&req)?;
    let upload = own_upload(&app, &user, path.into_inner()).await?;
    tus::terminate(&app, &user.actor(), &upload).await?;
    Ok(tus_response(StatusCode::NO_CONTENT).finish())
}
