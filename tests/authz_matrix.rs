//! The authorization matrix: every route the server declares × every kind of caller → the
//! status it must answer. The table below is checked against `reelbox::web::endpoints()` in
//! both directions, so a new route cannot ship without a row, and a removed one leaves no
//! stale row behind.
//!
//! Callers: anonymous, a signed-in person with no grants, and people with view, contribute,
//! edit and manage on category C (some through groups, some directly), plus a site
//! administrator. Category D is granted to nobody but a bystander account (not a persona), so
//! for the personas only the administrator may see it.
//!
//! Pages are called with a browser session (cookie + form csrf + same Origin), the JSON API with
//! each persona's API token. State-changing calls send a valid body, and destructive ones act on
//! a throwaway object made for that one call, so every status reflects permission alone.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{PASSWORD, Server, Session, http, location};
use reqwest::Method;
use serde_json::{Value, json};

const PERSONAS: [&str; 7] = ["anonymous", "no-grants", "viewer", "contributor", "editor", "manager", "admin"];
const USERS: [Option<&str>; 7] =
    [None, Some("nobody"), Some("vera"), Some("conrad"), Some("edith"), Some("manon"), Some("ada")];
const ADMIN: usize = 6;
const BYSTANDER: &str = "bystander";
/// What `POST /account/password` changes a password to (and back).
const PASSWORD2: &str = "copper lantern meadow";

#[path = "authz/table.rs"]
mod table;

use table::*;

/// Everything the table refers to, made once.
struct Fixture {
    server: Server,
    admin: common::Api,
    admin_session: Session,
    sessions: Vec<Option<Session>>,
    tokens: Vec<Option<String>>,
    token_ids: Vec<Option<i64>>,
    bystander_token: String,
    bystander_token_id: i64,
    bystander: i64,
    c: i64,
    d: i64,
    spare_group: i64,
    grant_c: i64,
    grant_d: i64,
    media_c: i64,
    media_d: i64,
    video_c: i64,
    video_d: i64,
    setup_token: String,
    /// The anonymous browser's pre-session cookie and csrf value.
    form: (String, String),
    uniq: AtomicU64,
}

/// A real one-pixel PNG (uploads of images that do not decode are refused).
static UPLOAD_PNG: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(1, 1, image::Rgb([10, 120, 200]))
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode a PNG");
    png.into_inner()
});

fn upload_digest() -> String {
    use base64::Engine;
    use sha2::Digest;
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(UPLOAD_PNG.as_slice()))
    )
}

fn tus_metadata(category: i64) -> String {
    use base64::Engine;
    use sha2::Digest;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "filename {},category {},sha256 {}",
        b64("sample.png"),
        b64(&category.to_string()),
        b64(&hex::encode(sha2::Sha256::digest(UPLOAD_PNG.as_slice())))
    )
}

/// What `Body::Captions` sends.
const CAPTIONS: &str = "1\n00:00:00,000 --> 00:00:02,000\nHello\n";

/// A one-second H.264 clip made with ffmpeg.
fn video_clip() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clip.mp4");
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10"])
        .args(["-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&path)
        .output()
        .expect("run ffmpeg (apt-get install ffmpeg)");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&path).expect("clip")
}

fn digest_of(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes)))
}

/// Files where the transcoder publishes them (their bytes do not matter to permission checks).
fn publish_files(data: &std::path::Path, id: i64) {
    let dir = data.join("media").join(id.to_string());
    let rung = dir.join("hls").join("240p");
    std::fs::create_dir_all(&rung).expect("media dir");
    let files: [(&std::path::Path, &str, &[u8]); 9] = [
        (&dir, "hls/master.m3u8", b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n240p/index.m3u8\n"),
        (&rung, "index.m3u8", b"#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\nseg-00001.m4s\n"),
        (&rung, "init.mp4", b"init"),
        (&rung, "seg-00001.m4s", b"segment"),
        (&dir, "download.mp4", b"mp4"),
        (&dir, "download.m4a", b"m4a"),
        (&dir, "poster.jpg", b"jpg"),
        (&dir, "sprite.jpg", b"jpg"),
        (&dir, "sprite.vtt", b"WEBVTT\n"),
    ];
    for (base, name, bytes) in files {
        std::fs::write(base.join(name), bytes).expect("write a published file");
    }
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

impl Fixture {
    async fn new() -> Fixture {
        let server = Server::start();
        let setup_url = server.setup_url().expect("a fresh server prints its setup link");
        let setup_token = setup_url.split_once("token=").expect("token in setup link").1.to_string();
        server.add_user("ada", true);
        for name in USERS.iter().flatten().filter(|n| **n != "ada") {
            server.add_user(name, false);
        }
        server.add_user(BYSTANDER, false);
        server.add_user("probe", false);
        let tokens: Vec<Option<String>> = USERS.iter().map(|u| u.map(|n| server.token(n))).collect();
        let bystander_token = server.token(BYSTANDER);
        let admin = server.api(tokens[ADMIN].as_deref().expect("admin token"));

        let c = id_of(
            &admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201).await,
        );
        let d = id_of(
            &admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Staff room"})), 201).await,
        );
        let mut groups = Vec::new();
        for name in ["viewers", "editors", "spare"] {
            groups.push(id_of(
                &admin.call(Method::POST, "/api/v1/groups", Some(&json!({ "name": name })), 201).await,
            ));
        }
        let (viewers, editors, spare_group) = (groups[0], groups[1], groups[2]);
        for (g, who) in [(viewers, "vera"), (editors, "edith")] {
            admin
                .call(
                    Method::POST,
                    &format!("/api/v1/groups/{g}/members"),
                    Some(&json!({ "username": who })),
                    204,
                )
                .await;
        }
        let grants_c = json!([
            {"group_id": viewers, "role": "view"},
            {"username": "conrad", "role": "contribute"},
            {"group_id": editors, "role": "edit"},
            {"username": "manon", "role": "manage"},
            {"username": BYSTANDER, "role": "view"},
        ]);
        admin.call(Method::PUT, &format!("/api/v1/categories/{c}/grants"), Some(&grants_c), 204).await;
        let grants_d = json!([{"username": BYSTANDER, "role": "view"}]);
        admin.call(Method::PUT, &format!("/api/v1/categories/{d}/grants"), Some(&grants_d), 204).await;
        let bystander_grant = |list: Value| {
            list.as_array()
                .and_then(|l| l.iter().find(|g| g["grantee_name"] == BYSTANDER))
                .map(id_of)
                .expect("bystander's grant")
        };
        let grant_c = bystander_grant(admin.get_json(&format!("/api/v1/categories/{c}/grants")).await);
        let grant_d = bystander_grant(admin.get_json(&format!("/api/v1/categories/{d}/grants")).await);
        let bystander = admin
            .get_json("/api/v1/users?q=bystander")
            .await
            .as_array()
            .and_then(|l| l.iter().find(|u| u["username"] == BYSTANDER).map(id_of))
            .expect("bystander id");

        let mut sessions = Vec::new();
        let mut token_ids = Vec::new();
        for (user, token) in USERS.iter().zip(&tokens) {
            match (user, token) {
                (Some(name), Some(token)) => {
                    sessions.push(Some(server.sign_in(name, PASSWORD).await));
                    let own = server.api(token).get_json("/api/v1/tokens").await;
                    token_ids.push(own.as_array().and_then(|l| l.first()).map(id_of));
                }
                _ => {
                    sessions.push(None);
                    token_ids.push(None);
                }
            }
        }
        let bystander_token_id = id_of(&server.api(&bystander_token).get_json("/api/v1/tokens").await[0]);
        let admin_session = sessions[ADMIN].clone().expect("admin session");
        let mut media = Vec::new();
        for cat in [c, d] {
            let res = admin
                .client
                .post(admin.url(&format!("/api/v1/media?category={cat}&filename=sample.png")))
                .bearer_auth(&admin.token)
                .header("Content-Digest", upload_digest())
                .body(UPLOAD_PNG.to_vec())
                .send()
                .await
                .expect("upload");
            assert_eq!(res.status().as_u16(), 201, "admin uploads a sample into {cat}");
            media.push(id_of(&res.json::<Value>().await.expect("item")));
        }
        let (media_c, media_d) = (media[0], media[1]);
        let clip = video_clip();
        let mut videos = Vec::new();
        for cat in [c, d] {
            let res = admin
                .client
                .post(admin.url(&format!("/api/v1/media?category={cat}&filename=clip.mp4")))
                .bearer_auth(&admin.token)
                .header("Content-Digest", digest_of(&clip))
                .body(clip.clone())
                .send()
                .await
                .expect("upload");
            assert_eq!(res.status().as_u16(), 201, "admin uploads a video into {cat}");
            let id = id_of(&res.json::<Value>().await.expect("item"));
            publish_files(server.data_dir(), id);
            let res = admin
                .client
                .post(admin.url(&format!("/api/v1/media/{id}/captions?lang=en")))
                .bearer_auth(&admin.token)
                .body(CAPTIONS)
                .send()
                .await
                .expect("captions");
            assert_eq!(res.status().as_u16(), 201, "admin adds captions to {id}");
            videos.push(id);
        }
        let (video_c, video_d) = (videos[0], videos[1]);
        let form = server.form_cookie().await;
        Fixture {
            server,
            admin,
            admin_session,
            sessions,
            tokens,
            token_ids,
            bystander_token,
            bystander_token_id,
            bystander,
            c,
            d,
            spare_group,
            grant_c,
            grant_d,
            media_c,
            media_d,
            video_c,
            video_d,
            setup_token,
            form,
            uniq: AtomicU64::new(1),
        }
    }

    fn cat(&self, c: Cat) -> i64 {
        match c {
            Cat::C => self.c,
            Cat::D => self.d,
        }
    }

    fn subst(&self, s: &str) -> String {
        let mut out = s
            .replace("$PW2", PASSWORD2)
            .replace("$PW", PASSWORD)
            .replace("$SETUP", &self.setup_token)
            .replace("$G", &self.spare_group.to_string())
            .replace("$C", &self.c.to_string())
            .replace("$D", &self.d.to_string());
        while out.contains("$U") {
            out = out.replacen("$U", &self.uniq.fetch_add(1, Ordering::SeqCst).to_string(), 1);
        }
        out
    }

    /// A new item in `c` uploaded by the administrator, then taken to `status` (recycled,
    /// archived, or "" to leave it ready).
    async fn fresh_media(&self, c: Cat, status: &str) -> i64 {
        let cat = self.cat(c);
        let res = self
            .admin
            .client
            .post(self.admin.url(&format!("/api/v1/media?category={cat}&filename=fresh.png")))
            .bearer_auth(&self.admin.token)
            .header("Content-Digest", upload_digest())
            .body(UPLOAD_PNG.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status().as_u16(), 201, "admin uploads a throwaway item into {c:?}");
        let id = id_of(&res.json::<Value>().await.expect("item"));
        if matches!(status, "recycled" | "archived") {
            self.admin.call(Method::DELETE, &format!("/api/v1/media/{id}"), None, 200).await;
        }
        if status == "archived" {
            self.admin.call(Method::DELETE, &format!("/api/v1/media/{id}?permanent=true"), None, 200).await;
        }
        id
    }

    async fn fresh_group(&self) -> i64 {
        let body = json!({"name": self.subst("temp group $U")});
        id_of(&self.admin.call(Method::POST, "/api/v1/groups", Some(&body), 201).await)
    }

    async fn fresh_user(&self) -> (i64, String) {
        let name = self.subst("temp-$U");
        let body = json!({"username": name, "password": PASSWORD, "must_change_password": false});
        (id_of(&self.admin.call(Method::POST, "/api/v1/users", Some(&body), 201).await), name)
    }

    async fn fresh_token(&self, token: &str) -> i64 {
        let body = json!({"name": self.subst("temp token $U")});
        id_of(&self.server.api(token).call(Method::POST, "/api/v1/tokens", Some(&body), 201).await)
    }

    async fn resolve(&self, p: P, persona: usize) -> Vec<String> {
        let one = |v: i64| vec![v.to_string()];
        let one_str = |v: &str| vec![v.to_string()];
        match p {
            P::Category(c) => one(self.cat(c)),
            P::Group => one(self.spare_group),
            P::User => one(self.bystander),
            P::Grant(Cat::C) => one(self.grant_c),
            P::Grant(Cat::D) => one(self.grant_d),
            P::Media(Cat::C) => one(self.media_c),
            P::Media(Cat::D) => one(self.media_d),
            P::FreshMedia(c) => one(self.fresh_media(c, "").await),
            P::FreshRecycled(c) => one(self.fresh_media(c, "recycled").await),
            P::FreshArchived(c) => one(self.fresh_media(c, "archived").await),
            P::FreshThumbnail(c) => {
                let cat = self.cat(c);
                let mut png = std::io::Cursor::new(Vec::new());
                image::RgbImage::from_pixel(40, 30, image::Rgb([200, 80, 20]))
                    .write_to(&mut png, image::ImageFormat::Png)
                    .expect("encode a PNG");
                let png = png.into_inner();
                let digest = {
                    use base64::Engine;
                    use sha2::Digest;
                    format!(
                        "sha-256=:{}:",
                        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&png))
                    )
                };
                let res = self
                    .admin
                    .client
                    .post(self.admin.url(&format!("/api/v1/media?category={cat}&filename=thumb.png")))
                    .bearer_auth(&self.admin.token)
                    .header("Content-Digest", digest)
                    .body(png)
                    .send()
                    .await
                    .expect("upload");
                assert_eq!(res.status().as_u16(), 201, "admin uploads an image into {c:?}");
                vec![id_of(&res.json::<Value>().await.expect("item")).to_string(), "320".to_string()]
            }
            P::FreshUpload => {
                let conrad = self.server.api(self.tokens[3].as_deref().expect("contributor token"));
                let res = conrad
                    .client
                    .post(conrad.url("/api/v1/uploads"))
                    .bearer_auth(&conrad.token)
                    .header("Tus-Resumable", "1.0.0")
                    .header("Upload-Length", UPLOAD_PNG.len().to_string())
                    .header("Upload-Metadata", tus_metadata(self.c))
                    .send()
                    .await
                    .expect("tus creation");
                assert_eq!(res.status().as_u16(), 201, "the contributor starts an upload");
                let location = location(&res);
                one_str(location.rsplit('/').next().unwrap_or_default())
            }
            P::Video(Cat::C) => one(self.video_c),
            P::Video(Cat::D) => one(self.video_d),
            P::Rung => one_str("240p"),
            P::Segment => one_str("seg-00001.m4s"),
            P::CaptionFile => one_str("en.vtt"),
            P::FreshCaptions(c) => {
                let id = self.fresh_media(c, "").await;
                let res = self
                    .admin
                    .client
                    .post(self.admin.url(&format!("/api/v1/media/{id}/captions?lang=en")))
                    .bearer_auth(&self.admin.token)
                    .body(CAPTIONS)
                    .send()
                    .await
                    .expect("captions");
                assert_eq!(res.status().as_u16(), 201, "admin adds captions to a throwaway item");
                vec![id.to_string(), "en".to_string()]
            }
            P::OwnToken => one(self.token_ids[persona].unwrap_or(self.bystander_token_id)),
            P::OtherToken => one(self.bystander_token_id),
            P::FreshGrant(c) => {
                let cat = self.cat(c);
                let g = self.fresh_group().await;
                let res = self
                    .send_form(
                        &self.admin_session,
                        &format!("/categories/{cat}/access"),
                        &[("group_id", &g.to_string()), ("role", "view")],
                    )
                    .await;
                assert_eq!(res.status().as_u16(), 303, "admin grants a throwaway group on {c:?}");
                let grants = self.admin.get_json(&format!("/api/v1/categories/{cat}/grants")).await;
                let found = grants
                    .as_array()
                    .and_then(|l| l.iter().find(|x| x["grantee"]["group"].as_i64() == Some(g)))
                    .map(id_of)
                    .unwrap_or_else(|| panic!("grant of group {g} in {grants}"));
                one(found)
            }
            P::FreshGroup => one(self.fresh_group().await),
            P::FreshOwnToken => {
                let token = self.tokens[persona].as_deref().unwrap_or(&self.bystander_token);
                one(self.fresh_token(token).await)
            }
            P::FreshOtherToken => one(self.fresh_token(&self.bystander_token).await),
            P::FreshSession | P::FreshUserSession => {
                let (id, name) = self.fresh_user().await;
                self.server.sign_in(&name, PASSWORD).await;
                let list = self.admin.get_json(&format!("/api/v1/users/{id}/sessions")).await;
                let sid = list
                    .as_array()
                    .and_then(|l| l.first())
                    .map(id_of)
                    .expect("the throwaway account's session");
                if matches!(p, P::FreshSession) { one(sid) } else { vec![id.to_string(), sid.to_string()] }
            }
            P::FreshUser => one(self.fresh_user().await.0),
            P::FreshChild(c) => {
                let body = json!({"name": self.subst("temp category $U"), "parent_id": self.cat(c)});
                one(id_of(&self.admin.call(Method::POST, "/api/v1/categories", Some(&body), 201).await))
            }
            P::FreshMembership | P::FreshMembershipOfUser => {
                let g = self.fresh_group().await;
                let body = json!({ "username": BYSTANDER });
                self.admin.call(Method::POST, &format!("/api/v1/groups/{g}/members"), Some(&body), 204).await;
                let (g, u) = (g.to_string(), self.bystander.to_string());
                if matches!(p, P::FreshMembership) { vec![g, u] } else { vec![u, g] }
            }
        }
    }

    async fn send_form(&self, session: &Session, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &session.csrf));
        http()
            .post(self.server.url(path))
            .header("Cookie", session.cookie_header())
            .header("Origin", &self.server.base)
            .form(&form)
            .send()
            .await
            .expect("POST form")
    }

    /// One call as one persona; the status and the `Location`.
    async fn call(&self, r: &Row, c: &Case, persona: usize) -> (String, u16, String) {
        let mut values = Vec::new();
        for p in &c.params {
            values.extend(self.resolve(*p, persona).await);
        }
        let mut path = String::new();
        let mut values = values.into_iter();
        for (i, seg) in r.path.split('/').enumerate() {
            if i > 0 {
                path.push('/');
            }
            if seg.starts_with('{') {
                path.push_str(&values.next().unwrap_or_else(|| panic!("{} needs more parameters", r.path)));
            } else {
                path.push_str(seg);
            }
        }
        assert!(values.next().is_none(), "{}: too many parameters", r.path);
        if !c.query.is_empty() {
            path = format!("{path}?{}", self.subst(c.query));
        }
        let cred = c.cred.unwrap_or(if r.path.starts_with("/api/") { Cred::Token } else { Cred::Session });
        let session = match (USERS[persona], cred) {
            (Some(name), Cred::Session) if c.fresh_session => Some(self.server.sign_in(name, PASSWORD).await),
            (Some(_), Cred::Session) => self.sessions[persona].clone(),
            _ => None,
        };
        let mut req = http().request(r.method.clone(), self.server.url(&path));
        if r.path.starts_with("/api/v1/uploads") {
            req = req.header("Tus-Resumable", "1.0.0");
        }
        if r.method != Method::GET {
            req = req.header("Origin", &self.server.base);
        }
        let mut csrf = None;
        match (&session, cred) {
            (Some(s), _) => {
                req = req.header("Cookie", s.cookie_header()).header("X-CSRF-Token", &s.csrf);
                csrf = Some(s.csrf.clone());
            }
            (None, Cred::Token) => {
                if let Some(t) = &self.tokens[persona] {
                    req = req.bearer_auth(t);
                }
            }
            (None, Cred::Session) => {
                // Anonymous browser: the pre-session form cookie makes its forms valid.
                req = req.header("Cookie", format!("reelbox_form={}", self.form.0));
                csrf = Some(self.form.1.clone());
            }
        }
        match c.body {
            Body::None => {}
            Body::Form(fields) => {
                let mut form: Vec<(String, String)> =
                    fields.iter().map(|(k, v)| (k.to_string(), self.subst(v))).collect();
                form.push(("csrf".into(), csrf.clone().unwrap_or_default()));
                req = req.form(&form);
            }
            Body::Json(text) => {
                req = req.header("Content-Type", "application/json").body(self.subst(text));
            }
            Body::Upload => {
                req = req.header("Content-Digest", upload_digest()).body(UPLOAD_PNG.to_vec());
            }
            Body::TusCreate(cat) => {
                req = req
                    .header("Upload-Length", UPLOAD_PNG.len().to_string())
                    .header("Upload-Metadata", tus_metadata(self.cat(cat)));
            }
            Body::Captions => {
                req = req.header("Content-Type", "text/plain").body(CAPTIONS);
            }
            Body::TusChunk => {
                req = req
                    .header("Content-Type", "application/offset+octet-stream")
                    .header("Upload-Offset", "0")
                    .body(UPLOAD_PNG[..8].to_vec());
            }
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{} {path}: {e}", r.method));
        let status = res.status().as_u16();
        let to = location(&res);
        if c.revert_password
            && status == 303
            && let Some(s) = &session
        {
            let back = self
                .send_form(
                    s,
                    "/account/password",
                    &[("current", PASSWORD2), ("new", PASSWORD), ("confirm", PASSWORD)],
                )
                .await;
            assert_eq!(back.status().as_u16(), 303, "{}: password changed back", PERSONAS[persona]);
        }
        (path, status, to)
    }
}

fn declared() -> BTreeSet<(String, String)> {
    reelbox::web::endpoints().iter().map(|e| (e.method.as_str().to_string(), e.path.to_string())).collect()
}

#[test]
fn table_covers_exactly_the_declared_routes() {
    let declared = declared();
    let listed: Vec<(String, String)> =
        table().iter().map(|r| (r.method.as_str().to_string(), r.path.to_string())).collect();
    let listed_set: BTreeSet<(String, String)> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), listed_set.len(), "a route is listed twice in the matrix");
    let missing: Vec<_> = declared.difference(&listed_set).collect();
    let stale: Vec<_> = listed_set.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorization matrix (add one to tests/authz_matrix.rs): {missing:?}"
    );
    assert!(stale.is_empty(), "rows for routes that no longer exist: {stale:?}");
    for r in table() {
        assert!(!r.cases.is_empty(), "{} {} has no case", r.method, r.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_persona_as_the_table_says() {
    let fx = Fixture::new().await;
    let table = table();
    let declared = declared();
    let mut failures = Vec::new();
    let mut calls = 0;
    for r in &table {
        if !declared.contains(&(r.method.as_str().to_string(), r.path.to_string())) {
            continue; // reported by table_covers_exactly_the_declared_routes
        }
        for c in &r.cases {
            for (persona, name) in PERSONAS.iter().enumerate() {
                let (path, status, to) = fx.call(r, c, persona).await;
                calls += 1;
                let expected = c.expect[persona];
                let label = format!(
                    "{} {} [{}]{} as {}",
                    r.method,
                    r.path,
                    path,
                    if c.what.is_empty() { String::new() } else { format!(" ({})", c.what) },
                    name
                );
                if status != expected {
                    failures.push(format!("{label}: expected {expected}, got {status} (Location: {to:?})"));
                } else if persona == 0 && status == 303 && r.path != "/login" && !to.starts_with("/login") {
                    failures.push(format!("{label}: anonymous visitors must be sent to /login, not {to:?}"));
                }
            }
        }
    }
    assert!(calls > 300, "the matrix made only {calls} calls");
    assert!(
        failures.is_empty(),
        "{} of {calls} calls answered unexpectedly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
