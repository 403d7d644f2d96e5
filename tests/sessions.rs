//! Sessions: the rules (idle timeout, renewal, absolute lifetime, revocation, disabled accounts)
//! at library level with a clock the test moves, and what a browser sees over HTTP.

mod common;

use common::{PASSWORD, Server, http, location, set_cookie, set_cookie_header};
use reelbox::accounts::sessions::{self, SessionPolicy};
use reelbox::accounts::users::{self, NewUser};
use reelbox::accounts::{AccountsError, Hasher};
use reelbox::clock::Clock;
use reelbox::config::Config;
use reelbox::db::Db;
use reelbox::db::ids::UserId;
use reqwest::{Method, StatusCode};

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const START: i64 = 1_800_000_000;

struct Lib {
    _dir: tempfile::TempDir,
    db: Db,
    clock: Clock,
    policy: SessionPolicy,
    user: UserId,
}

fn lib() -> Lib {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), 2).expect("open database");
    let clock = Clock::manual(START);
    let policy = SessionPolicy::from_config(&Config::default().sessions);
    let hash = Hasher::new(&Config::default().passwords).expect("hasher").hash(PASSWORD).expect("hash");
    let user = db
        .write_blocking(|c| {
            users::create(
                c,
                NewUser {
                    username: "amy",
                    display_name: "Amy",
                    email: None,
                    password_hash: Some(hash),
                    is_admin: false,
                    must_change_password: false,
                },
                START,
            )
        })
        .expect("create user")
        .id;
    Lib { _dir: dir, db, clock, policy, user }
}

impl Lib {
    fn create(&self) -> sessions::NewSession {
        let now = self.clock.now();
        self.db
            .write_blocking(|c| sessions::create(c, self.user, self.policy, now, "127.0.0.1", "test"))
            .expect("create session")
    }

    fn lookup(&self, token: &str) -> Option<sessions::ActiveSession> {
        let now = self.clock.now();
        self.db.read_blocking(|c| sessions::lookup(c, token, self.policy, now)).expect("lookup")
    }

    /// What the middleware does on every request: look up, renew when due.
    fn visit(&self, token: &str) -> bool {
        let Some(s) = self.lookup(token) else { return false };
        let now = self.clock.now();
        if sessions::needs_touch(&s, now) {
            self.db.write_blocking(|c| sessions::touch(c, s.id, now)).expect("touch");
        }
        true
    }
}

#[test]
fn default_policy_is_sixty_minutes_idle_and_twelve_hours_absolute() {
    let p = SessionPolicy::from_config(&Config::default().sessions);
    assert_eq!(p.idle_secs, 60 * MINUTE);
    assert_eq!(p.absolute_secs, 12 * HOUR);
}

#[test]
fn idle_session_ends_after_sixty_minutes() {
    let l = lib();
    let s = l.create();
    let found = l.lookup(&s.token).expect("a new session is live");
    assert_eq!(found.user.username, "amy");
    assert_eq!(found.csrf, s.csrf, "lookup returns the session's csrf token");
    l.clock.advance(59 * MINUTE + 59);
    assert!(l.lookup(&s.token).is_some(), "live one second before the idle timeout");
    l.clock.advance(1);
    assert!(l.lookup(&s.token).is_none(), "ended after 60 idle minutes");
    assert!(l.lookup("not-a-token").is_none());
}

#[test]
fn activity_renews_the_idle_timer() {
    let l = lib();
    let s = l.create();
    l.clock.advance(30);
    let found = l.lookup(&s.token).expect("live");
    assert!(!sessions::needs_touch(&found, l.clock.now()), "no write for requests within the same minute");
    l.clock.advance(30);
    assert!(sessions::needs_touch(&found, l.clock.now()), "renewed once a minute");

    l.clock.advance(45 * MINUTE - MINUTE);
    assert!(l.visit(&s.token), "renewed at 45 minutes");
    l.clock.advance(59 * MINUTE);
    assert!(l.visit(&s.token), "still live 104 minutes after sign-in thanks to the renewal");
    l.clock.advance(60 * MINUTE);
    assert!(!l.visit(&s.token), "60 idle minutes after the last renewal it ends");
}

#[test]
fn absolute_lifetime_ends_even_an_active_session() {
    let l = lib();
    let s = l.create();
    // Someone active all day: a request every 30 minutes.
    let mut elapsed = 0;
    while elapsed + 30 * MINUTE < 12 * HOUR {
        l.clock.advance(30 * MINUTE);
        elapsed += 30 * MINUTE;
        assert!(l.visit(&s.token), "live at {elapsed}s");
    }
    l.clock.advance(12 * HOUR - 1 - elapsed);
    assert!(l.visit(&s.token), "live one second before 12 hours");
    l.clock.advance(1);
    assert!(!l.visit(&s.token), "ended at 12 hours although active");
}

#[test]
fn revoked_sessions_end_and_revoke_all_ends_every_one() {
    let l = lib();
    let a = l.create();
    let b = l.create();
    let c = l.create();
    assert_ne!(a.token, b.token, "each session has its own token");
    assert_ne!(a.csrf, b.csrf, "each session has its own csrf token");
    let a_id = l.lookup(&a.token).expect("live").id;
    let owner = l.db.write_blocking(|conn| sessions::revoke(conn, a_id)).expect("revoke");
    assert_eq!(owner, Some(l.user));
    assert!(l.lookup(&a.token).is_none(), "revoked");
    assert!(l.lookup(&b.token).is_some(), "others unaffected");
    let again = l.db.write_blocking(|conn| sessions::revoke(conn, a_id)).expect("revoke again");
    assert_eq!(again, None, "revoking twice reports nothing to revoke");
    let n = l.db.write_blocking(|conn| sessions::revoke_all(conn, l.user)).expect("revoke all");
    assert_eq!(n, 2);
    assert!(l.lookup(&b.token).is_none() && l.lookup(&c.token).is_none());
}

#[test]
fn disabling_an_account_ends_its_sessions() {
    let l = lib();
    let s = l.create();
    let id = l.lookup(&s.token).expect("live").id;
    let now = l.clock.now();
    l.db.write_blocking(|c| {
        let tx = c.transaction()?;
        users::set_disabled(&tx, l.user, true, now)?;
        tx.commit()?;
        Ok::<_, AccountsError>(())
    })
    .expect("disable");
    assert!(l.lookup(&s.token).is_none(), "session gone once disabled");
    let gone = l.db.write_blocking(|c| sessions::revoke(c, id)).expect("revoke");
    assert_eq!(gone, None, "the session row itself was deleted");
    // A session that somehow exists for a disabled account is not honoured either.
    let late = l.create();
    assert!(l.lookup(&late.token).is_none(), "disabled accounts have no live sessions");
    l.db.write_blocking(|c| {
        let tx = c.transaction()?;
        users::set_disabled(&tx, l.user, false, now)?;
        tx.commit()?;
        Ok::<_, AccountsError>(())
    })
    .expect("enable");
    let fresh = l.create();
    assert!(l.lookup(&fresh.token).is_some(), "enabled again: new sessions work");
}

// ---- over HTTP ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_attributes() {
    let server = Server::start();
    server.add_user("amy", false);
    let res = server.post_login("amy", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie_header(&res, "reelbox_session").expect("session cookie");
    let attrs: Vec<String> = cookie.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect();
    assert!(attrs.iter().any(|a| a == "httponly"), "HttpOnly: {cookie}");
    assert!(attrs.iter().any(|a| a == "samesite=lax"), "SameSite=Lax: {cookie}");
    assert!(attrs.iter().any(|a| a == "path=/"), "Path=/: {cookie}");
    assert!(
        !attrs.iter().any(|a| a == "secure"),
        "no Secure over plain http (the browser would drop it): {cookie}"
    );
    let value = set_cookie(&res, "reelbox_session").expect("value");
    assert!(value.len() >= 40, "a long random token: {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sign_in_gets_a_new_token_and_sign_out_ends_it_on_the_server() {
    let server = Server::start();
    server.add_user("amy", false);
    let first = server.sign_in("amy", PASSWORD).await;
    let second = server.sign_in("amy", PASSWORD).await;
    assert_ne!(first.cookie, second.cookie, "a new session token at each sign-in");
    assert_ne!(first.csrf, second.csrf);

    // A cookie planted before sign-in (session fixation) is replaced, not adopted.
    let (form, csrf) = server.form_cookie().await;
    let res = http()
        .post(server.url("/login"))
        .header("Cookie", format!("reelbox_form={form}; reelbox_session=planted-by-someone-else"))
        .header("Origin", &server.base)
        .form(&[("username", "amy"), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let issued = set_cookie(&res, "reelbox_session").expect("new cookie");
    assert_ne!(issued, "planted-by-someone-else");

    let browser = common::Browser::new(&server.base, first.clone());
    assert_eq!(browser.get("/account").await.status(), StatusCode::OK);
    let out = browser.post_form("/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(location(&out).starts_with("/login"), "{}", location(&out));
    let removal = set_cookie_header(&out, "reelbox_session").expect("sign-out clears the cookie");
    assert!(removal.to_ascii_lowercase().contains("max-age=0") || removal.contains("1970"), "{removal}");

    // Replaying the old cookie (as a stolen copy would) no longer works.
    let old =
        http().get(server.url("/account")).header("Cookie", first.cookie_header()).send().await.expect("GET");
    assert_eq!(old.status(), StatusCode::SEE_OTHER);
    assert!(location(&old).starts_with("/login"), "{}", location(&old));
    let api = http()
        .get(server.url("/api/v1/me"))
        .header("Cookie", first.cookie_header())
        .send()
        .await
        .expect("GET");
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    // The other session of the same person is untouched.
    let other = http()
        .get(server.url("/account"))
        .header("Cookie", second.cookie_header())
        .send()
        .await
        .expect("GET");
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_can_end_a_persons_sessions() {
    let server = Server::start();
    server.add_user("root", true);
    server.add_user("amy", false);
    let admin = server.api(&server.token("root"));
    let amy_id = admin.get_json("/api/v1/users?q=amy").await[0]["id"].as_i64().expect("amy's id");
    let one = server.sign_in("amy", PASSWORD).await;
    let two = server.sign_in("amy", PASSWORD).await;
    let three = server.sign_in("amy", PASSWORD).await;
    let status = |s: common::Session| {
        let url = server.url("/account");
        async move { http().get(url).header("Cookie", s.cookie_header()).send().await.expect("GET").status() }
    };

    let list = admin.get_json(&format!("/api/v1/users/{amy_id}/sessions")).await;
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 3, "three live sessions: {list:?}");
    // End one session: find it as the one that stops working.
    let first_id = list[0]["id"].as_i64().expect("session id");
    admin.call(Method::DELETE, &format!("/api/v1/sessions/{first_id}"), None, 204).await;
    let live: Vec<StatusCode> =
        vec![status(one.clone()).await, status(two.clone()).await, status(three.clone()).await];
    assert_eq!(
        live.iter().filter(|s| **s == StatusCode::OK).count(),
        2,
        "exactly one session ended: {live:?}"
    );
    admin.call(Method::DELETE, &format!("/api/v1/sessions/{first_id}"), None, 404).await;

    admin.call(Method::DELETE, &format!("/api/v1/users/{amy_id}/sessions"), None, 204).await;
    for s in [one, two, three] {
        assert_eq!(status(s).await, StatusCode::SEE_OTHER, "every session ended");
    }
    let list = admin.get_json(&format!("/api/v1/users/{amy_id}/sessions")).await;
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    let audit = admin.get_json("/api/v1/audit?action=session.revoke").await;
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "both endings are audited: {audit}");
}
