//! The replication feed on the primary: blobs by hash (and, with the WAL shipper, the
//! transaction records and snapshots). Every request is signed with the pair's secret.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::App;
use crate::store::Sha256;
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, get, ranges};

pub fn endpoints() -> Vec<Endpoint> {
    vec![get(
        "/replication/v1/blobs/{sha256}",
        Access::Replication,
        "A stored file by its SHA-256 (the replica checks the hash)",
        blob,
    )]
}

async fn blob(req: HttpRequest, app: web::Data<App>, path: web::Path<String>) -> Result<HttpResponse, WebError> {
    super::replication::authenticate(&req, &app, b"")?;
    let hash = Sha256::from_hex(&path).map_err(|_| WebError::not_found())?;
    let file = app.store.path(&hash);
    let cond = ranges::Conditions::of(&req);
    let prepared = tokio::task::spawn_blocking(move || ranges::prepare(&file, &cond))
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?
        .ok_or_else(WebError::not_found)?;
    let mut res = HttpResponse::Ok();
    res.content_type("application/octet-stream");
    Ok(ranges::respond_prepared(res, prepared))
}
