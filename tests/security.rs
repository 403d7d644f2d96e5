//! Security behaviour seen from outside: CSRF, sign-in throttling, no account enumeration,
//! password rules, temporary passwords, disabled accounts, response headers, privacy by
//! default, the audit trail, the OpenAPI description, health and metrics.

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, Server, header, http, location};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A server with an administrator ("root", API token) and a person ("amy").
struct World {
    server: Server,
    admin: common::Api,
}

fn world() -> World {
    let server = Server::start();
    server.add_user("root", true);
    server.add_user("amy", false);
    let admin = server.api(&server.token("root"));
    World { server, admin }
}

impl World {
    async fn user_id(&self, name: &str) -> i64 {
        let list = self.admin.get_json(&format!("/api/v1/users?q={name}")).await;
        list.as_array()
            .and_then(|l| l.iter().find(|u| u["username"] == name))
            .and_then(|u| u["id"].as_i64())
            .unwrap_or_else(|| panic!("no user {name} in {list}"))
    }

    async fn category(&self, name: &str) -> i64 {
        let c =
            self.admin.call(Method::POST, "/api/v1/categories", Some(&json!({ "name": name })), 201).await;
        c["id"].as_i64().expect("category id")
    }

    async fn grant(&self, category: i64, username: &str, role: &str) {
        let body = json!([{ "username": username, "role": role }]);
        self.admin
            .call(Method::PUT, &format!("/api/v1/categories/{category}/grants"), Some(&body), 204)
            .await;
    }
}

async fn token_count(api: &common::Api) -> usize {
    api.get_json("/api/v1/tokens").await.as_array().map(Vec::len).expect("token list")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_and_token_less_changes_are_refused() {
    let w = world();
    let amy_api = w.server.api(&w.server.token("amy"));
    let amy = w.server.browser_login("amy", PASSWORD).await;
    let before = token_count(&amy_api).await;
    let form = [("name", "from a form"), ("csrf", amy.csrf.as_str())];

    // A valid form, but sent from another site.
    let res = amy
        .client
        .post(amy.url("/account/tokens"))
        .header("Origin", "http://evil.example")
        .form(&form)
        .send()
        .await;
    assert_eq!(res.expect("POST").status(), StatusCode::FORBIDDEN, "cross-origin Origin");
    let res = amy
        .client
        .post(amy.url("/account/tokens"))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Origin", &amy.base)
        .form(&form)
        .send()
        .await;
    assert_eq!(res.expect("POST").status(), StatusCode::FORBIDDEN, "Sec-Fetch-Site: cross-site");
    let res = amy.client.post(amy.url("/account/tokens")).header("Origin", "null").form(&form).send().await;
    assert_eq!(res.expect("POST").status(), StatusCode::FORBIDDEN, "Origin: null (sandboxed frame)");

    // Same origin, but the form's token is missing or wrong.
    let res = amy
        .client
        .post(amy.url("/account/tokens"))
        .header("Origin", &amy.base)
        .form(&[("name", "no csrf")])
        .send()
        .await
        .expect("POST");
    assert!(
        matches!(res.status(), StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST),
        "missing csrf field refused (today 400: the form does not parse): {}",
        res.status()
    );
    let res = amy
        .client
        .post(amy.url("/account/tokens"))
        .header("Origin", &amy.base)
        .form(&[("name", "bad csrf"), ("csrf", "forged-value-forged-value-forged-value-1234")])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "wrong csrf");
    let page = res.text().await.expect("body");
    assert!(page.contains("did not come from this site"), "the page says why: {page}");

    // JSON with the session cookie needs X-CSRF-Token (a bearer token does not).
    let res = amy
        .client
        .post(amy.url("/api/v1/tokens"))
        .header("Origin", &amy.base)
        .json(&json!({"name": "no header"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let problem: Value = res.json().await.expect("problem json");
    assert_eq!(problem["code"], "csrf-failed", "{problem}");
    assert_eq!(token_count(&amy_api).await, before, "nothing was created by any refused request");

    let ok = amy.json(Method::POST, "/api/v1/tokens", Some(&json!({"name": "with header"}))).await;
    assert_eq!(ok.status(), StatusCode::CREATED, "the same call with X-CSRF-Token works");
    let ok = amy.post_form("/account/tokens", &[("name", "proper form")]).await;
    assert_eq!(ok.status(), StatusCode::OK, "the proper form works");
    assert_eq!(token_count(&amy_api).await, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_requests_change_nothing() {
    let w = world();
    let token = w.server.token("amy");
    let amy_api = w.server.api(&token);
    let id = amy_api.get_json("/api/v1/tokens").await[0]["id"].as_i64().expect("token id");
    let amy = w.server.browser_login("amy", PASSWORD).await;

    let confirm = amy.get(&format!("/account/tokens/{id}/revoke")).await;
    assert_eq!(confirm.status(), StatusCode::OK, "the confirmation page");
    assert!(confirm.text().await.expect("page").contains("method=\"post\""), "it asks with a POST form");
    let logout = amy.get("/logout").await;
    assert!(logout.status().is_client_error(), "GET /logout is not a way to sign out: {}", logout.status());
    let delete = amy.get(&format!("/api/v1/tokens/{id}")).await;
    assert!(delete.status().is_client_error(), "no GET on a DELETE route: {}", delete.status());

    assert_eq!(amy_api.get("/api/v1/me").await.status(), StatusCode::OK, "token still valid");
    assert_eq!(amy.get("/account").await.status(), StatusCode::OK, "still signed in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_are_throttled_and_audited() {
    let w = world();
    let mut throttled = None;
    for attempt in 1..=12 {
        let res = w.server.post_login("amy", "wrong password, try again").await;
        match res.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                throttled =
                    Some((attempt, header(res.headers(), "retry-after"), res.text().await.expect("page")));
                break;
            }
            other => panic!("attempt {attempt}: unexpected {other}"),
        }
    }
    let (attempt, retry_after, page) = throttled.expect("throttled within 12 attempts");
    assert!(attempt > 5, "the first five failures are free (throttled at attempt {attempt})");
    let secs: u64 = retry_after.parse().unwrap_or_else(|_| panic!("Retry-After is seconds: {retry_after:?}"));
    assert!((1..=900).contains(&secs), "Retry-After {secs}");
    assert!(page.contains("Too many unsuccessful sign-in attempts"), "{page}");

    // Even the right password is refused while locked, so guessing cannot continue.
    let res = w.server.post_login("amy", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "locked for the right password too");

    let locked = w.admin.get_json("/api/v1/audit?action=sign-in.locked").await;
    let locked = locked.as_array().expect("list");
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0]["target"], "amy");
    let failures = w.admin.get_json("/api/v1/audit?action=sign-in&outcome=failure").await;
    assert_eq!(failures.as_array().map(Vec::len), Some(attempt - 1), "every failure is audited");

    // An administrator unlocks; the person can sign in again.
    let id = w.user_id("amy").await;
    w.admin.call(Method::POST, &format!("/api/v1/users/{id}/unlock"), None, 204).await;
    assert_eq!(w.server.post_login("amy", PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

/// The login page's error, with the echoed username and the form token taken out.
fn normalised(page: &str, username: &str) -> String {
    page.replace(&format!("value=\"{username}\""), "value=\"USER\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_does_not_reveal_which_accounts_exist() {
    let w = world();
    let (cookie, csrf) = w.server.form_cookie().await;
    let attempt = |name: &'static str| {
        let (url, base, cookie, csrf) =
            (w.server.url("/login"), w.server.base.clone(), cookie.clone(), csrf.clone());
        async move {
            let start = Instant::now();
            let res = http()
                .post(url)
                .header("Cookie", format!("reelbox_form={cookie}"))
                .header("Origin", base)
                .form(&[("username", name), ("password", "not the password at all"), ("csrf", &csrf)])
                .send()
                .await
                .expect("POST /login");
            let status = res.status();
            let page = res.text().await.expect("page");
            (status, normalised(&page, name), start.elapsed())
        }
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..4 {
        known.push(attempt("amy").await);
        unknown.push(attempt("nobody-by-this-name").await);
    }
    assert_eq!(known[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(known[0].0, unknown[0].0, "same status");
    assert!(known[0].1.contains("The username or password is not right"), "{}", known[0].1);
    assert_eq!(known[0].1, unknown[0].1, "the same page, word for word");
    let median = |v: &mut Vec<(StatusCode, String, Duration)>| {
        let mut t: Vec<Duration> = v.iter().map(|x| x.2).collect();
        t.sort();
        t[t.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    let ratio = k.as_secs_f64().max(u.as_secs_f64()) / k.as_secs_f64().min(u.as_secs_f64()).max(1e-6);
    assert!(ratio < 4.0, "similar timing (argon2 runs for unknown users too): known {k:?}, unknown {u:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_are_refused() {
    let w = world();
    for (password, why) in [
        ("short", "too short"),
        ("password123456", "common word with digits"),
        ("qwertyuiop123", "common"),
        ("newcomer-ben is here", "contains the username"),
    ] {
        let body = json!({"username": "newcomer-ben", "password": password});
        let res = w.admin.send(Method::POST, "/api/v1/users", Some(&body)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{why}: {password}");
        assert_eq!(header(res.headers(), "content-type"), "application/problem+json");
        let problem: Value = res.json().await.expect("problem");
        assert_eq!(problem["code"], "password-rejected", "{why}: {problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains("cannot be used")), "{problem}");
    }
    let body = json!({"username": "newcomer-ben", "password": "granite pelican orchard"});
    w.admin.call(Method::POST, "/api/v1/users", Some(&body), 201).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_password_must_be_changed_first() {
    let w = world();
    let token = w.server.token("amy");
    let amy_api = w.server.api(&token);
    let old = w.server.sign_in("amy", PASSWORD).await;
    let id = w.user_id("amy").await;
    let temporary = "temporary lantern meadow";
    w.admin
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/password"),
            Some(&json!({ "password": temporary })),
            204,
        )
        .await;

    let res =
        http().get(w.server.url("/account")).header("Cookie", old.cookie_header()).send().await.expect("GET");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the old session ended");
    assert!(location(&res).starts_with("/login"));
    assert_eq!(
        w.server.post_login("amy", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED,
        "old password gone"
    );

    let res = amy_api.get("/api/v1/tokens").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["code"], "password-change-required", "{problem}");
    let me = amy_api.get_json("/api/v1/me").await;
    assert_eq!(me["must_change_password"], true, "{me}");

    let signed_in = w.server.post_login("amy", temporary).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/account/password", "sent to choose a new password");
    let session = common::set_cookie(&signed_in, "reelbox_session").expect("session");
    let me: Value = http()
        .get(w.server.url("/api/v1/me"))
        .header("Cookie", format!("reelbox_session={session}"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    let amy = common::Browser::new(
        &w.server.base,
        common::Session { cookie: session, csrf: me["csrf_token"].as_str().expect("csrf").to_string() },
    );
    let home = amy.get("/").await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&home), "/account/password", "every page leads to the password form first");
    assert_eq!(amy.get("/account/password").await.status(), StatusCode::OK);

    let new = "saffron bicycle harbour";
    let changed =
        amy.post_form("/account/password", &[("current", temporary), ("new", new), ("confirm", new)]).await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert!(location(&changed).contains("notice=password-changed"), "{}", location(&changed));
    assert_eq!(amy.get("/").await.status(), StatusCode::OK, "free to use the site");
    assert_eq!(amy_api.get("/api/v1/tokens").await.status(), StatusCode::OK, "the token works again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_accounts_cannot_sign_in_or_use_tokens() {
    let w = world();
    let amy_api = w.server.api(&w.server.token("amy"));
    let session = w.server.sign_in("amy", PASSWORD).await;
    assert_eq!(amy_api.get("/api/v1/me").await.status(), StatusCode::OK);
    let id = w.user_id("amy").await;
    let after = w
        .admin
        .call(Method::PATCH, &format!("/api/v1/users/{id}"), Some(&json!({"disabled": true})), 200)
        .await;
    assert_eq!(after["disabled"], true);

    let res = w.server.post_login("amy", PASSWORD).await;
    assert!(res.status().is_client_error(), "sign-in refused: {}", res.status());
    assert!(common::set_cookie(&res, "reelbox_session").is_none(), "no session for a disabled account");
    let res = amy_api.get("/api/v1/me").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "tokens stop working");
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["code"], "invalid-token");
    let res = http()
        .get(w.server.url("/account"))
        .header("Cookie", session.cookie_header())
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "existing sessions ended");
}

fn check_security_headers(what: &str, res: &reqwest::Response) {
    let h = res.headers();
    let csp = header(h, "content-security-policy");
    for part in ["object-src 'none'", "base-uri 'none'", "frame-ancestors 'self'"] {
        assert!(csp.contains(part), "{what}: CSP has {part}: {csp:?}");
    }
    let script = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap_or("");
    assert!(!script.is_empty() || csp.contains("default-src 'self'"), "{what}: scripts restricted: {csp:?}");
    assert!(!script.contains("'unsafe-inline'") && !script.contains("'unsafe-eval'"), "{what}: {csp:?}");
    assert_eq!(header(h, "x-content-type-options"), "nosniff", "{what}");
    assert!(!header(h, "referrer-policy").is_empty(), "{what}: Referrer-Policy");
    assert!(header(h, "strict-transport-security").is_empty(), "{what}: no HSTS over plain http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_the_security_headers() {
    let w = world();
    let amy = w.server.browser_login("amy", PASSWORD).await;
    let anon = http();
    let u = |p: &str| w.server.url(p);
    let cases: Vec<(&str, reqwest::Response)> = vec![
        ("login page", anon.get(u("/login")).send().await.expect("GET")),
        ("redirect", anon.get(u("/")).send().await.expect("GET")),
        ("page not found", anon.get(u("/no/such/page")).send().await.expect("GET")),
        ("api 401", anon.get(u("/api/v1/me")).send().await.expect("GET")),
        ("api 404", anon.get(u("/api/v1/nothing")).send().await.expect("GET")),
        ("healthz", anon.get(u("/healthz")).send().await.expect("GET")),
        ("static file", anon.get(u("/static/app.css")).send().await.expect("GET")),
        ("openapi", anon.get(u("/api/v1/openapi.json")).send().await.expect("GET")),
        ("signed-in page", amy.get("/").await),
        ("forbidden page", amy.get("/admin").await),
        ("wrong method", amy.get("/logout").await),
        (
            "csrf refusal",
            amy.client
                .post(amy.url("/logout"))
                .header("Origin", "http://evil.example")
                .send()
                .await
                .expect("POST"),
        ),
        (
            "malformed json",
            w.admin
                .client
                .post(w.admin.url("/api/v1/groups"))
                .bearer_auth(&w.admin.token)
                .header("Content-Type", "application/json")
                .body("{not json")
                .send()
                .await
                .expect("POST"),
        ),
    ];
    for (what, res) in &cases {
        check_security_headers(what, res);
    }
    assert_eq!(cases[11].1.status(), StatusCode::FORBIDDEN, "the csrf refusal is a refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_accounts_see_nothing_until_granted_and_lists_are_filtered() {
    let w = world();
    let science = w.category("Science").await;
    let staff = w.category("Staff room").await;
    let amy = w.server.browser_login("amy", PASSWORD).await;
    let amy_api = w.server.api(&w.server.token("amy"));

    let home = amy.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let page = home.text().await.expect("page");
    assert!(page.contains("You are signed in, but you have not been given access yet"), "{page}");
    assert!(!page.contains("Science") && !page.contains("Staff room"), "no category is shown");
    assert_eq!(amy_api.get_json("/api/v1/categories").await, json!([]), "the API lists nothing either");
    assert_eq!(
        http().get(w.server.url("/api/v1/categories")).send().await.expect("GET").status(),
        StatusCode::OK
    );
    let anon: Value =
        http().get(w.server.url("/api/v1/categories")).send().await.expect("GET").json().await.expect("json");
    assert_eq!(anon, json!([]), "anonymous visitors see nothing");

    w.grant(science, "amy", "view").await;
    let page = amy.get("/").await.text().await.expect("page");
    assert!(page.contains("Science"), "the granted category appears: {page}");
    assert!(!page.contains("Staff room"), "the other does not");
    assert!(!page.contains("not been given access yet"));
    let list = amy_api.get_json("/api/v1/categories").await;
    let names: Vec<&str> = list.as_array().expect("list").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, vec!["Science"]);
    assert_eq!(list[0]["role"], "view");
    assert_eq!(amy_api.get(&format!("/api/v1/categories/{staff}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(amy.get(&format!("/categories/{staff}")).await.status(), StatusCode::NOT_FOUND);
    let all = w.admin.get_json("/api/v1/categories").await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "administrators see everything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_records_security_events_newest_first() {
    let w = world();
    assert_eq!(w.server.post_login("amy", "definitely not it").await.status(), StatusCode::UNAUTHORIZED);
    let amy = w.server.browser_login("amy", PASSWORD).await;
    let group = w.admin.call(Method::POST, "/api/v1/groups", Some(&json!({"name": "Year 9"})), 201).await;
    let category = w.category("Maths").await;
    let body = json!([{"group_id": group["id"], "role": "view"}]);
    w.admin.call(Method::PUT, &format!("/api/v1/categories/{category}/grants"), Some(&body), 204).await;
    let token = amy.json(Method::POST, "/api/v1/tokens", Some(&json!({"name": "laptop"}))).await;
    assert_eq!(token.status(), StatusCode::CREATED);
    let token: Value = token.json().await.expect("json");
    let revoked = amy.json(Method::DELETE, &format!("/api/v1/tokens/{}", token["id"]), None).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);

    let events = w.admin.get_json("/api/v1/audit?limit=500").await;
    let events = events.as_array().expect("list");
    let ids: Vec<i64> = events.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|p| p[0] > p[1]), "newest first: {ids:?}");
    let position = |action: &str, outcome: &str| {
        events
            .iter()
            .position(|e| e["action"] == action && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action} ({outcome}) event in {events:?}"))
    };
    let failed = position("sign-in", "failure");
    let signed_in = position("sign-in", "success");
    let group_made = position("group.create", "success");
    let category_made = position("category.create", "success");
    let granted = position("grants.replace", "success");
    let token_made = position("token.create", "success");
    let token_revoked = position("token.revoke", "success");
    assert!(
        token_revoked < token_made
            && token_made < granted
            && granted < category_made
            && category_made < group_made
            && group_made < signed_in
            && signed_in < failed,
        "events in reverse order of what happened: {events:?}"
    );
    assert_eq!(events[failed]["actor"], "amy");
    assert_eq!(events[failed]["client_addr"], "127.0.0.1");
    let text = serde_json::to_string(&events).expect("json");
    assert!(
        !text.contains("definitely not it") && !text.contains(PASSWORD),
        "no password in the audit trail"
    );

    let root = w.server.browser_login("root", PASSWORD).await;
    let csv = root.get("/admin/audit.csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(header(csv.headers(), "content-type").starts_with("text/csv"), "{:?}", csv.headers());
    assert!(header(csv.headers(), "content-disposition").contains("attachment"));
    let csv = csv.text().await.expect("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,time_utc,actor,action,target_type,target_id,target,client_addr,outcome,detail")
    );
    assert!(csv.contains(",token.revoke,") && csv.contains(",sign-in,"), "{csv}");
    assert!(lines.all(|l| !l.is_empty()), "one event per line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_api_route() {
    let server = Server::start();
    let doc: Value =
        http().get(server.url("/api/v1/openapi.json")).send().await.expect("GET").json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for e in reelbox::web::endpoints().iter().filter(|e| e.path.starts_with("/api/")) {
        let method = e.method.as_str().to_lowercase();
        let op = &paths.get(e.path).unwrap_or_else(|| panic!("{} missing from the OpenAPI paths", e.path))
            [&method];
        assert!(op.is_object(), "{} {} missing from the OpenAPI description", e.method, e.path);
        assert_eq!(op["summary"], e.summary, "{} {}", e.method, e.path);
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} API routes");
    assert!(!paths.contains_key("/login"), "pages are not part of the API description");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let w = world();
    let res = http().get(w.server.url("/healthz")).send().await.expect("GET");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(res.headers(), "content-type").starts_with("application/json"));
    let health: Value = res.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], reelbox::VERSION);
    assert_eq!(health["role"], "primary");
    assert!(health["uptime_secs"].is_u64(), "{health}");

    let res = http().get(w.server.url("/metrics")).send().await.expect("GET");
    assert_eq!(res.status(), StatusCode::OK, "loopback may scrape");
    assert!(header(res.headers(), "content-type").starts_with("text/plain"));
    let text = res.text().await.expect("text");
    assert!(text.contains("# TYPE reelbox_http_requests_total counter"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "requests are counted by route: {text}");
    assert!(!text.contains("token="), "no query strings in labels");

    let amy = w.server.api(&w.server.token("amy"));
    assert_eq!(amy.get("/metrics").await.status(), StatusCode::FORBIDDEN, "a non-admin token is refused");
    assert_eq!(w.admin.get("/metrics").await.status(), StatusCode::OK, "an administrator's token may");
    let bad = w.server.api("rbx_not-a-real-token");
    assert_eq!(bad.get("/metrics").await.status(), StatusCode::FORBIDDEN, "an unknown token is refused");
}
