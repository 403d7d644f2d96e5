//! The JSON API under `/api/v1`: everything the admin console does, for scripts (API tokens)
//! and for the browser (session cookie plus `X-CSRF-Token`). Described at `/api/v1/openapi.json`.

pub mod captions;
pub mod categories;
pub mod directory;
pub mod media;
pub mod openapi;
pub mod ops;
pub mod recycle;
pub mod search;
pub mod uploads;

use super::Endpoint;

pub fn endpoints() -> Vec<Endpoint> {
    let mut all = directory::endpoints();
    all.extend(categories::endpoints());
    all.extend(media::endpoints());
    all.extend(captions::endpoints());
    all.extend(recycle::endpoints());
    all.extend(search::endpoints());
    all.extend(uploads::endpoints());
    all.extend(ops::endpoints());
    all.push(super::get(
        "/api/v1/openapi.json",
        super::Access::Public,
        "This API's OpenAPI description",
        openapi::document,
    ));
    all
}
