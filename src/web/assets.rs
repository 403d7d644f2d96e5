//! CSS, JavaScript and icons from `static/`, embedded in the binary. Each file is also served
//! under a fingerprinted name (`app.3f2a1b9c.css`) that never changes content, so browsers may
//! cache it for a year; the plain name is revalidated with its ETag.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;
use sha2::Digest;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

struct Asset {
    bytes: std::borrow::Cow<'static, [u8]>,
    mime: String,
    etag: String,
}

struct Catalogue {
    /// Served name (plain or fingerprinted) → (asset, immutable?).
    by_name: HashMap<String, (usize, bool)>,
    assets: Vec<Asset>,
    /// Plain name → fingerprinted URL.
    urls: HashMap<String, String>,
}

fn catalogue() -> &'static Catalogue {
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| {
        let mut cat = Catalogue { by_name: HashMap::new(), assets: Vec::new(), urls: HashMap::new() };
        for name in Static::iter() {
            let Some(file) = Static::get(&name) else { continue };
            let digest = hex::encode(&sha2::Sha256::digest(&file.data)[..6]);
            let mime = file.metadata.mimetype().to_string();
            let idx = cat.assets.len();
            cat.assets.push(Asset { bytes: file.data, mime, etag: format!("\"{digest}\"") });
            let fingerprinted = match name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.{digest}.{ext}"),
                None => format!("{name}.{digest}"),
            };
            cat.urls.insert(name.to_string(), format!("/static/{fingerprinted}"));
            cat.by_name.insert(fingerprinted, (idx, true));
            cat.by_name.insert(name.to_string(), (idx, false));
        }
        cat
    })
}

/// The URL to use in pages for a file in `static/`.
pub fn url(name: &str) -> String {
    catalogue().urls.get(name).cloned().unwrap_or_else(|| format!("/static/{name}"))
}

pub async fn serve(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let cat = catalogue();
    let Some(&(idx, immutable)) = cat.by_name.get(path.as_str()) else {
        return HttpResponse::NotFound().content_type("text/plain").body("no such file");
    };
    let asset = &cat.assets[idx];
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "public, no-cache" };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag || t.trim() == "*"));
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, asset.etag.clone()))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish();
    }
    HttpResponse::Ok()
        .content_type(asset.mime.clone())
        .insert_header((header::ETAG, asset.etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(asset.bytes.clone().into_owned())
}
