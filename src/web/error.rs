//! The one place where errors become HTTP: a status from the error's kind, a stable code, the
//! message for the person, and the detail only in the log. Pages get an HTML error page and
//! `/api` gets `application/problem+json` (done by [`render_errors`], which sees the request).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use crate::error::{AppError, ErrorKind};

#[derive(Debug, Clone)]
pub struct WebError {
    pub status: StatusCode,
    pub code: &'static str,
    /// For the person.
    pub message: String,
    /// For the log only.
    pub detail: String,
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status.as_u16(), self.detail)
    }
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl<E: AppError> From<E> for WebError {
    fn from(e: E) -> Self {
        let kind = e.kind();
        WebError {
            status: status_of(kind),
            code: e.code(),
            message: e.user_message(),
            detail: e.to_string(),
            retry_after: match kind {
                ErrorKind::TooManyRequests { retry_after_secs } => Some(retry_after_secs),
                _ => None,
            },
        }
    }
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> WebError {
        let message = message.into();
        WebError { status, code, detail: message.clone(), message, retry_after: None }
    }
    pub fn not_found() -> WebError {
        WebError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "There is nothing at this address. Check the link, or go back to the home page.",
        )
    }
    pub fn forbidden() -> WebError {
        WebError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You do not have access to this. If you need it, ask your IT administrator.",
        )
    }
    pub fn unauthorized() -> WebError {
        WebError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Please sign in first.")
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn internal(detail: impl std::fmt::Display) -> WebError {
        WebError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "Something went wrong on the server. Please try again, and tell your IT administrator if it keeps happening.".into(),
            detail: detail.to_string(),
            retry_after: None,
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse<BoxBody> {
        // Replaced by `render_errors` with the right format; this plain text is the fallback.
        HttpResponse::build(self.status).content_type("text/plain; charset=utf-8").body(self.message.clone())
    }
}

/// Problem JSON (RFC 9457) for the API.
pub fn problem_json(e: &WebError) -> HttpResponse {
    let body = serde_json::json!({
        "type": format!("https://reelbox.invalid/problems/{}", e.code),
        "title": e.status.canonical_reason().unwrap_or("Error"),
        "status": e.status.as_u16(),
        "code": e.code,
        "detail": e.message,
    });
    let mut res = HttpResponse::build(e.status);
    res.content_type("application/problem+json");
    if let Some(secs) = e.retry_after {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    if e.status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"reelbox\""));
    }
    res.body(body.to_string())
}

fn html_page(e: &WebError, chrome: reelbox_templates::Chrome) -> HttpResponse {
    let mut res = HttpResponse::build(e.status);
    res.content_type("text/html; charset=utf-8");
    if let Some(secs) = e.retry_after {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    let page = reelbox_templates::pages::error_page(
        &chrome,
        e.status.as_u16(),
        e.status.canonical_reason().unwrap_or("Error"),
        &e.message,
        e.code,
    );
    res.body(page.into_string())
}

/// Turn any error response into the right format for where it happened, and log it once.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let api = req.path().starts_with("/api/");
    // Inner middleware (authentication, CSRF guard) answer refusals as error responses, which
    // arrive here like handler errors. Do not clone the request before routing: the router
    // needs sole ownership of it (`match_info_mut`) and panics otherwise.
    let res = next.call(req).await?;
    let Some(err) = res.response().error() else { return Ok(res.map_into_boxed_body()) };
    let web = match err.as_error::<WebError>() {
        Some(w) => w.clone(),
        None => {
            // actix's own errors (malformed JSON or forms, body too large, bad paths): client
            // mistakes with a message that names the problem.
            let status = res.status();
            let code = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
                StatusCode::NOT_FOUND => "not-found",
                StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
                s if s.is_client_error() => "bad-request",
                _ => "internal",
            };
            let message = if status.is_client_error() {
                match status {
                    StatusCode::PAYLOAD_TOO_LARGE => {
                        "The request is larger than this server accepts.".to_string()
                    }
                    _ => format!("The request could not be understood: {err}"),
                }
            } else {
                WebError::internal("").message
            };
            WebError { status, code, message, detail: err.to_string(), retry_after: None }
        }
    };
    let mut web = web;
    if !api && web.status == StatusCode::UNAUTHORIZED && web.code == "unauthenticated" {
        // A page refused an anonymous visitor (e.g. a category that is not public): send them
        // to sign in and back, as the `CurrentUser` extractor does, instead of a bare 401 page.
        let next = res.request().uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        web.status = StatusCode::SEE_OTHER;
        web.detail = format!("/login?next={}", urlencoding::encode(next));
    }
    if web.status.is_redirection() {
        // A redirect carried as an error (sign in first); not worth a log line.
    } else if web.status.is_server_error() {
        tracing::error!(code = web.code, status = web.status.as_u16(), detail = %web.detail, "request failed");
    } else {
        tracing::debug!(code = web.code, status = web.status.as_u16(), detail = %web.detail, "request refused");
    }
    let chrome = super::chrome_for_errors(res.request());
    let (req, _) = res.into_parts();
    if web.status.is_redirection() {
        let to = HttpResponse::SeeOther().insert_header((header::LOCATION, web.detail.clone())).finish();
        return Ok(ServiceResponse::new(req, to));
    }
    let mut body = if api { problem_json(&web) } else { html_page(&web, chrome) };
    if req.path().starts_with("/api/v1/uploads") {
        // tus clients expect the protocol version on every answer, refusals included.
        body.headers_mut().insert(
            header::HeaderName::from_static("tus-resumable"),
            header::HeaderValue::from_static("1.0.0"),
        );
    }
    Ok(ServiceResponse::new(req, body))
}
