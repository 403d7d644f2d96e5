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
        responses.insert(ok.into(), json!({"description": "Success"}));
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
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "code": {"type": "string", "description": "Stable machine-readable code"},
                    "detail": {"type": "string", "description": "What went wrong and what to do"},
                }},
            },
        },
    })
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(build())
}
