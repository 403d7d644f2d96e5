//! The OpenAPI 3.1 description, generated from the same endpoint table that registers the
//! routes, so a route cannot exist without being documented.

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};

use crate::web::{Access, endpoints};

/// Path parameters of an actix path (`/api/v1/groups/{id}/members/{user_id}`).
fn params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_string)
        .collect()
}

pub fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for e in endpoints().into_iter().filter(|e| e.path.starts_with("/api/")) {
        let method = e.method.as_str().to_lowercase();
        let parameters: Vec<Value> = params(e.path)
            .into_iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "integer"}}))
            .collect();
        let security = match e.access {
            Access::Public | Access::Filtered => json!([{}, {"bearer": []}, {"session": []}]),
            _ => json!([{"bearer": []}, {"session": []}]),
        };
        let mut responses = Map::new();
        let ok = match e.method.as_str() {
            "POST" if e.summary.contains("Create") => "201",
            "DELETE" | "PUT" => "204",
            "POST"
                if e.path.ends_with("/members")
                    || e.path.ends_with("/password")
                    || e.path.ends_with("/unlock") =>
            {
                "204"
            }
            _ => "200",
        };
        let success = if e.path == "/api/v1/media/{id}" && method == "get" {
            json!({"description": "Success", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MediaItem"}}}})
        } else {
            json!({"description": "Success"})
        };
        responses.insert(ok.into(), success);
        for (code, what) in
            [("400", "Bad request"), ("401", "Not signed in"), ("403", "Not allowed"), ("404", "Not found")]
        {
            responses.insert(code.into(), json!({"description": what, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}));
        }
        let mut op = json!({
            "summary": e.summary,
            "description": format!("Requires: {}.", e.access.describe()),
            "operationId": format!("{}_{}", method, e.path.trim_start_matches("/api/v1/").replace(['/', '{', '}', '.'], "_")),
            "parameters": parameters,
            "security": security,
            "responses": responses,
        });
        if matches!(e.method.as_str(), "POST" | "PUT" | "PATCH") {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        paths.entry(e.path.to_string()).or_insert_with(|| json!({}))[&method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "reelbox API", "version": crate::VERSION,
                 "description": "Scripts authenticate with `Authorization: Bearer <token>`; browser sessions must also send `X-CSRF-Token` on changes."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "reelbox_session"},
            },
            "schemas": {
                "MediaItem": media_item_schema(),
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "code": {"type": "string", "description": "Stable machine-readable code"},
                    "detail": {"type": "string", "description": "What went wrong and what to do"},
                }},
            },
        },
    })
}

/// `GET /api/v1/media/{id}`: the item's own fields and, beside them, where its conversion for
/// playback stands. `transcode_state` (the job) is kept apart from `status` (the item).
fn media_item_schema() -> Value {
    let int = |d: &str| json!({"type": "integer", "description": d});
    json!({"type": "object", "properties": {
        "id": int("The item's id"),
        "status": {"type": "string", "description": "The item: processing, ready, failed, recycled, archived"},
        "playable": {"type": "boolean", "description": "At least one complete rendition is published (playback may start while the rest is made)"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Conversion progress over the whole job, both passes weighted; 100 when done"},
        "eta_seconds": {"type": ["integer", "null"], "description": "Estimated seconds left while the job runs, else null"},
        "transcode_state": {"type": "string", "enum": ["none", "waiting", "queued", "running", "done", "failed"], "description": "The conversion job's state (the contract's `state`)"},
        "renditions": {"type": "array", "description": "Published renditions, highest first", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"}, "bandwidth": {"type": "integer"},
        }}},
        "error": {"type": ["string", "null"], "description": "Why the conversion failed, or that it waits for the transcoder; else null"},
        "damaged": {"type": ["object", "null"], "description": "The integrity scrub found the original damaged: {since, problem, detail}; else null"},
    }})
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(build())
}
