//! Who is asking: the session cookie or a bearer token is resolved once per request (middleware)
//! and handlers state what they need with an extractor: [`Viewer`] (anyone), [`CurrentUser`]
//! (signed in), [`AdminUser`] (site administrator). Forms are CSRF-checked by [`CsrfForm`].

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::de::DeserializeOwned;

use super::error::WebError;
use crate::App;
use crate::accounts::login::Actor;
use crate::accounts::sessions::{self, ActiveSession, SessionPolicy};
use crate::accounts::tokens;
use crate::accounts::users::User;
use crate::db::ids::{SessionId, TokenId};

/// Name of the pre-session cookie that protects the sign-in and setup forms (double submit).
pub const FORM_COOKIE: &str = "reelbox_form";

pub fn session_cookie_name(https: bool) -> &'static str {
    if https { "__Host-reelbox_session" } else { "reelbox_session" }
}

#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    Session(Arc<ActiveSession>),
    Token {
        id: TokenId,
        user: Box<User>,
    },
    /// A bearer token was sent but is unknown, revoked or its owner disabled.
    BadToken,
}

/// The client address of a request, worked out once (the forwarded claim's HMAC is checked
/// on the first call) and kept in the request's extensions.
#[derive(Clone)]
struct ClientAddr(String);

/// The client address for logs, throttling and the audit trail.
pub fn client_addr(req: &HttpRequest) -> String {
    if let Some(ClientAddr(addr)) = req.extensions().get::<ClientAddr>() {
        return addr.clone();
    }
    let addr = forwarded_client(req)
        .unwrap_or_else(|| req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default());
    req.extensions_mut().insert(ClientAddr(addr.clone()));
    addr
}

/// On a request a replica forwarded: the address of the person it serves, when signed with the
/// pair's secret (anyone else's claim is ignored).
fn forwarded_client(req: &HttpRequest) -> Option<String> {
    use crate::replica::auth::{CLIENT_AUTH_HEADER, CLIENT_HEADER, verify_client};
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let (client, auth) = (header(CLIENT_HEADER)?, header(CLIENT_AUTH_HEADER)?);
    let app = req.app_data::<web::Data<App>>()?;
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let now = crate::replica::now_ms() / 1000;
    let ok = verify_client(app.replica.secret()?, auth, req.method().as_str(), pq, client, now);
    (ok && client.parse::<std::net::IpAddr>().is_ok()).then(|| client.to_string())
}

/// One cookie's value, found without parsing every cookie into owned copies as
/// `HttpRequest::cookie` does (this runs for every request, every media segment included).
fn cookie_value(headers: &header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        // As actix parses them: trimmed, percent-decoded, malformed ones skipped.
        .filter_map(|c| actix_web::cookie::Cookie::parse_encoded(c.trim()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

fn bearer(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// The session a request's cookie names, when the cache already holds it, live, and it needs
/// nothing more than reading: no renewal due, no password change pending, no bearer token
/// beside it. `None` means "ask [`authenticate`]", never "signed out". For the segment fast
/// path (`media_files::fast`); the caller has counted other processes' commits
/// ([`crate::db::Db::generation`]) for this request.
pub fn cached_session(app: &App, headers: &header::HeaderMap) -> Option<Arc<ActiveSession>> {
    if headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    let token = cookie_value(headers, session_cookie_name(app.is_https()))?;
    let key = crate::accounts::token_hash(&token);
    let session = app.caches.session(&key, app.db.known_generation())??;
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let now = app.clock.now();
    let usable = sessions::is_live(session.last_seen_at, session.expires_at, policy, now)
        && !sessions::needs_touch(&session, now)
        && !session.user.must_change_password;
    usable.then_some(session)
}

/// Resolve the principal and put it in the request's extensions. Renews the session's idle
/// timer (at most once a minute).
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let skip = req.path().starts_with("/static/") || req.path() == "/healthz";
    if !skip {
        // Count the commits other processes made before this request arrived (the command
        // line writes beside the server), once: the caches below read the generation without
        // a system call.
        if let Some(app) = req.app_data::<web::Data<App>>() {
            app.db.generation();
        }
        // Refusals are answered here as responses (not `Err`), so `render_errors` formats them
        // and the security headers are added like on any other answer.
        let principal = match resolve(&req).await {
            Ok(p) => p,
            Err(e) => return Ok(req.error_response(e).map_into_right_body()),
        };
        let page_of = match &principal {
            Principal::Session(s) if !is_api_path(req.path()) => Some((s.user.id, s.user.is_admin)),
            _ => None,
        };
        req.extensions_mut().insert(principal);
        if let Some(who) = page_of
            && let Some(app) = req.app_data::<web::Data<App>>().cloned()
        {
            // For the navigation (`crate::web::chrome`), which has no database at hand. Cached
            // per write generation, so usually free.
            match access_for(&app, Some(who)).await {
                Ok(access) => {
                    req.extensions_mut().insert(NavAccess { manages_any: access.manages_any() });
                }
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            }
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// What the navigation of a page needs to know about the person's access.
#[derive(Debug, Clone, Copy)]
struct NavAccess {
    manages_any: bool,
}

/// Whether the signed-in person manages some category (or is an administrator), as found when
/// the request was authenticated; false outside pages.
pub fn manages_any(req: &HttpRequest) -> bool {
    req.extensions().get::<NavAccess>().is_some_and(|a| a.manages_any)
}

async fn resolve(req: &ServiceRequest) -> Result<Principal, WebError> {
    let Some(app) = req.app_data::<web::Data<App>>().cloned() else { return Ok(Principal::Anonymous) };
    let now = app.clock.now();
    if let Some(token) = bearer(req) {
        let found = app.db.read(move |c| tokens::lookup(c, &token)).await.map_err(WebError::from)?;
        let Some((id, last_used, user)) = found else { return Ok(Principal::BadToken) };
        if tokens::needs_touch(last_used, now) {
            // On a replica this goes to the primary instead of the local copy.
            crate::replica::touch::touch(&app, crate::replica::touch::Touch::Token(id), now).await?;
        }
        return Ok(Principal::Token { id, user: Box::new(user) });
    }
    let Some(token) = cookie_value(req.headers(), session_cookie_name(app.is_https())) else {
        return Ok(Principal::Anonymous);
    };
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let key = crate::accounts::token_hash(&token);
    let generation = app.db.known_generation();
    let found = match app.caches.session(&key, generation) {
        Some(hit) => hit,
        None => {
            let found = app
                .db
                .read(move |c| sessions::lookup(c, &token, policy, now))
                .await
                .map_err(WebError::from)?;
            let found = found.map(Arc::new);
            app.caches.put_session(key, generation, found.clone());
            found
        }
    };
    // A cached session may have run out of time since it was cached.
    let found = found.filter(|s| sessions::is_live(s.last_seen_at, s.expires_at, policy, now));
    let Some(session) = found else { return Ok(Principal::Anonymous) };
    if sessions::needs_touch(&session, now) {
        crate::replica::touch::touch(&app, crate::replica::touch::Touch::Session(session.id), now).await?;
        let mut renewed = (*session).clone();
        renewed.last_seen_at = now;
        return Ok(Principal::Session(Arc::new(renewed)));
    }
    // Shared with the cache: the request's extractors clone a pointer, not the person.
    Ok(Principal::Session(session))
}

fn principal(req: &HttpRequest) -> Principal {
    req.extensions().get::<Principal>().cloned().unwrap_or(Principal::Anonymous)
}

fn is_api(req: &HttpRequest) -> bool {
    is_api_path(req.path())
}

fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/")
}

/// Pages a person who must change their password may still use.
fn allowed_before_password_change(path: &str) -> bool {
    matches!(path, "/account/password" | "/logout" | "/api/v1/me")
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session: Option<(SessionId, String)>,
    pub token: Option<TokenId>,
    pub addr: String,
}

impl CurrentUser {
    pub fn actor(&self) -> Actor {
        Actor { id: Some(self.user.id), name: self.user.username.clone(), addr: self.addr.clone() }
    }
    pub fn csrf(&self) -> Option<&str> {
        self.session.as_ref().map(|(_, c)| c.as_str())
    }
    pub fn session_id(&self) -> Option<SessionId> {
        self.session.as_ref().map(|(id, _)| *id)
    }
}

/// Where to send an anonymous visitor of a page: the sign-in page, coming back afterwards.
fn sign_in_redirect(req: &HttpRequest) -> WebError {
    let next = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut e = WebError::unauthorized();
    e.status = StatusCode::SEE_OTHER;
    e.code = "sign-in-required";
    e.detail = format!("/login?next={}", urlencoding::encode(next));
    e
}

fn current_user(req: &HttpRequest) -> Result<CurrentUser, WebError> {
    let addr = client_addr(req);
    let cu = match principal(req) {
        Principal::Session(s) => {
            CurrentUser { user: s.user.clone(), session: Some((s.id, s.csrf.clone())), token: None, addr }
        }
        Principal::Token { id, user } => CurrentUser { user: *user, session: None, token: Some(id), addr },
        Principal::BadToken => {
            return Err(WebError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-token",
                "The API token is not valid: it may have been revoked, or its account disabled. Create a new one.",
            ));
        }
        Principal::Anonymous if is_api(req) => return Err(WebError::unauthorized()),
        Principal::Anonymous => return Err(sign_in_redirect(req)),
    };
    if cu.user.must_change_password && !allowed_before_password_change(req.path()) {
        if is_api(req) {
            return Err(WebError::new(
                StatusCode::FORBIDDEN,
                "password-change-required",
                "This account has a temporary password. Sign in on the website and choose a new one first.",
            ));
        }
        let mut e =
            WebError::new(StatusCode::SEE_OTHER, "password-change-required", "Choose a new password first.");
        e.detail = "/account/password".into();
        return Err(e);
    }
    Ok(cu)
}

impl FromRequest for CurrentUser {
    type Error = WebError;
    type Future = Ready<Result<Self, WebError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(current_user(req))
    }
}

/// A site administrator.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl FromRequest for AdminUser {
    type Error = WebError;
    type Future = Ready<Result<Self, WebError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            current_user(req)
                .and_then(|u| if u.user.is_admin { Ok(AdminUser(u)) } else { Err(WebError::forbidden()) }),
        )
    }
}

/// Anyone: a signed-in person or an anonymous visitor.
#[derive(Debug, Clone)]
pub struct Viewer(pub Option<CurrentUser>);

impl FromRequest for Viewer {
    type Error = WebError;
    type Future = Ready<Result<Self, WebError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match principal(req) {
            Principal::Anonymous => Ok(Viewer(None)),
            _ => current_user(req).map(|u| Viewer(Some(u))),
        })
    }
}

/// Forms carry the CSRF token in a field called `csrf`.
pub trait HasCsrf {
    fn csrf(&self) -> &str;
}

/// A form whose `csrf` field matched the session's token (or, before sign-in, the form cookie).
pub struct CsrfForm<T>(pub T);

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn expected_csrf(req: &HttpRequest) -> Option<String> {
    match principal(req) {
        Principal::Session(s) => Some(s.csrf.clone()),
        _ => req.cookie(FORM_COOKIE).map(|c| c.value().to_string()),
    }
}

fn csrf_failure() -> WebError {
    WebError::new(
        StatusCode::FORBIDDEN,
        "csrf-failed",
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

impl<T: DeserializeOwned + HasCsrf + 'static> FromRequest for CsrfForm<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, actix_web::Error>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = web::Form::<T>::from_request(req, payload);
        let expected = expected_csrf(req);
        Box::pin(async move {
            let web::Form(inner) = form.await?;
            match expected {
                Some(e) if !e.is_empty() && constant_time_eq(e.as_bytes(), inner.csrf().as_bytes()) => {
                    Ok(CsrfForm(inner))
                }
                _ => Err(csrf_failure().into()),
            }
        })
    }
}

/// A form with nothing but the CSRF token (buttons such as "Revoke").
#[derive(serde::Deserialize)]
pub struct Confirm {
    pub csrf: String,
}

impl HasCsrf for Confirm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn unsafe_method(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuse cross-site state changes before any handler runs: `Sec-Fetch-Site` from modern
/// browsers, `Origin` from the rest. JSON calls made with the session cookie must also send
/// the session's token in `X-CSRF-Token`; bearer-token calls are not ambient and need neither.
pub async fn csrf_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // Refusals are answered as responses (not `Err`), see `authenticate`.
    if let Err(e) = csrf_check(&req) {
        return Ok(req.error_response(e).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

fn csrf_check(req: &ServiceRequest) -> Result<(), WebError> {
    if unsafe_method(req.method()) {
        if let Some(site) = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok())
            && !matches!(site, "same-origin" | "none")
        {
            return Err(csrf_failure());
        }
        if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok())
            && !origin_allowed(req, origin)
        {
            return Err(csrf_failure());
        }
        let session_csrf = match req.extensions().get::<Principal>() {
            Some(Principal::Session(s)) => Some(s.csrf.clone()),
            _ => None,
        };
        if let Some(expected) = session_csrf
            && req.path().starts_with("/api/")
        {
            let sent = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
                return Err(WebError::new(
                    StatusCode::FORBIDDEN,
                    "csrf-failed",
                    "API calls made with a browser session must send the X-CSRF-Token header; scripts should use an API token.",
                ));
            }
        }
    }
    Ok(())
}

fn origin_allowed(req: &ServiceRequest, origin: &str) -> bool {
    if origin == "null" {
        return false;
    }
    let host = req.connection_info().host().to_string();
    let Some((_, rest)) = origin.split_once("://") else { return false };
    if rest.eq_ignore_ascii_case(&host) {
        return true;
    }
    req.app_data::<web::Data<App>>()
        .and_then(|app| app.config.public_url.clone())
        .is_some_and(|public| public.eq_ignore_ascii_case(origin))
}

/// What `user` (or an anonymous visitor) may do, category by category.
pub async fn access_of(
    app: &App,
    user: Option<&CurrentUser>,
) -> Result<Arc<crate::accounts::grants::Access>, WebError> {
    access_for(app, user.map(|u| (u.user.id, u.user.is_admin))).await
}

async fn access_for(
    app: &App,
    who: Option<(crate::db::ids::UserId, bool)>,
) -> Result<Arc<crate::accounts::grants::Access>, WebError> {
    let generation = app.db.known_generation();
    if let Some(hit) = app.caches.access(&who, generation) {
        return Ok(hit);
    }
    let access = Arc::new(app.db.read(move |c| crate::accounts::grants::access(c, who)).await?);
    app.caches.put_access(who, generation, access.clone());
    Ok(access)
}

/// The whole category tree in tree order (cached until the next write).
pub async fn all_categories(app: &App) -> Result<Arc<Vec<crate::library::categories::Category>>, WebError> {
    let generation = app.db.known_generation();
    if let Some(hit) = app.caches.categories(generation) {
        return Ok(hit);
    }
    let all = Arc::new(app.db.read(crate::library::categories::list).await?);
    app.caches.put_categories(generation, all.clone());
    Ok(all)
}

/// Require `role` on `category`; a category the caller cannot even view is reported as missing,
/// so its existence is not revealed.
pub async fn require_role(
    app: &App,
    user: Option<&CurrentUser>,
    category: crate::db::ids::CategoryId,
    role: crate::accounts::grants::Role,
) -> Result<Arc<crate::accounts::grants::Access>, WebError> {
    let access = access_of(app, user).await?;
    if access.can(category, role) {
        return Ok(access);
    }
    if access.can(category, crate::accounts::grants::Role::View) {
        return Err(WebError::forbidden());
    }
    if user.is_none() {
        return Err(WebError::unauthorized());
    }
    Err(WebError::not_found())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_client_address_is_worked_out_once_per_request() {
        let req = TestRequest::default().peer_addr("192.0.2.7:5000".parse().expect("addr")).to_http_request();
        // No pair secret here, so a forwarded claim is never believed; the peer is the client.
        assert_eq!(client_addr(&req), "192.0.2.7");
        let cached = req.extensions().get::<ClientAddr>().map(|a| a.0.clone());
        assert_eq!(cached.as_deref(), Some("192.0.2.7"));
        assert_eq!(client_addr(&req), "192.0.2.7");
    }
}
