//! The plain-HTTP listener next to HTTPS: it answers every request with a permanent redirect
//! (308, so the method and body are kept) to the same path on HTTPS. `/healthz` is the one
//! exception and is answered here too, so local monitoring and load balancers can probe the
//! process without TLS.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

/// Where redirects point.
#[derive(Clone, Debug)]
pub struct Target {
    /// The port HTTPS listens on (left out of the URL when 443).
    pub https_port: u16,
    /// `public_url` when it is an `https://` URL: redirects then always go there.
    pub public_url: Option<String>,
}

/// The HTTPS URL for a request with `host` (the `Host` header) and `path_and_query`, or None
/// when the host is not a plain host name or address (nothing else is echoed into `Location`).
pub fn location(target: &Target, host: Option<&str>, path_and_query: &str) -> Option<String> {
    let path = if path_and_query.starts_with('/') { path_and_query } else { "/" };
    if let Some(base) = &target.public_url {
        return Some(format!("{base}{path}"));
    }
    let host = host?;
    let name = if host.starts_with('[') {
        let end = host.find(']')?;
        let inner = &host[1..end];
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return None;
        }
        &host[..=end]
    } else {
        let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
        if name.is_empty()
            || name.len() > 253
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        name
    };
    Some(match target.https_port {
        443 => format!("https://{name}{path}"),
        port => format!("https://{name}:{port}{path}"),
    })
}

/// The handler for every path but `/healthz`.
pub async fn to_https(req: HttpRequest, target: web::Data<Target>) -> HttpResponse {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    match location(&target, host, pq) {
        Some(url) => HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        None => HttpResponse::BadRequest().content_type("text/plain; charset=utf-8").body(
            "This address only redirects to HTTPS, and the Host header was missing or not a host name.\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_host_and_path_swaps_port() {
        let t = Target { https_port: 8443, public_url: None };
        assert_eq!(
            location(&t, Some("media.school.example:8080"), "/watch/1?t=2").as_deref(),
            Some("https://media.school.example:8443/watch/1?t=2")
        );
        let t = Target { https_port: 443, public_url: None };
        assert_eq!(
            location(&t, Some("media.school.example"), "/").as_deref(),
            Some("https://media.school.example/")
        );
        assert_eq!(location(&t, Some("[::1]:80"), "/a").as_deref(), Some("https://[::1]/a"));
    }

    #[test]
    fn refuses_odd_hosts_and_prefers_public_url() {
        let t = Target { https_port: 443, public_url: None };
        assert_eq!(location(&t, None, "/"), None);
        assert_eq!(location(&t, Some("evil.example/x"), "/"), None);
        assert_eq!(location(&t, Some("a b"), "/"), None);
        assert_eq!(location(&t, Some("[zz]"), "/"), None);
        let t = Target { https_port: 8443, public_url: Some("https://media.school.example".into()) };
        assert_eq!(
            location(&t, Some("10.0.0.5"), "/x?y").as_deref(),
            Some("https://media.school.example/x?y")
        );
    }
}
