//! Signing in and out, password changes and the first-run setup link: the procedures that tie
//! passwords, throttling, sessions and the audit trail together.

use std::sync::Mutex;

use super::sessions::{self, NewSession, SessionPolicy};
use super::users::{self, NewUser, User};
use super::{AccountsError, Hasher, throttle};
use crate::App;
use crate::clock::Timestamp;
use crate::db::ids::{SessionId, UserId};
use crate::insights::audit::{self, Event, Outcome};

/// Who is doing something and from where, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub id: Option<UserId>,
    pub name: String,
    pub addr: String,
}

impl Actor {
    pub fn event(&self, action: &'static str) -> Event {
        Event::new(action).actor(self.id, &self.name).addr(&self.addr)
    }
}

/// Check the rules and hash, off the async threads (argon2 takes tens of milliseconds on purpose).
pub async fn prepare_password(
    hasher: &Hasher,
    username: &str,
    password: &str,
) -> Result<String, AccountsError> {
    hasher.check_rules(username, password)?;
    let (hasher, password) = (hasher.clone(), password.to_string());
    tokio::task::spawn_blocking(move || hasher.hash(&password))
        .await
        .map_err(|e| AccountsError::Hashing(e.to_string()))?
        .map_err(|e| AccountsError::Hashing(e.to_string()))
}

async fn verify(hasher: &Hasher, password: &str, stored: Option<String>) -> Result<bool, AccountsError> {
    let (hasher, password) = (hasher.clone(), password.to_string());
    tokio::task::spawn_blocking(move || match stored {
        Some(hash) => hasher.verify(&password, &hash),
        None => {
            hasher.verify_dummy(&password);
            false
        }
    })
    .await
    .map_err(|e| AccountsError::Hashing(e.to_string()))
}

pub struct SignedIn {
    pub user: User,
    pub session: NewSession,
}

/// Sign in with a username and password. Unknown users and wrong passwords get the same error
/// after the same work, so the answer does not reveal which accounts exist.
pub async fn sign_in(
    app: &App,
    username: &str,
    password: &str,
    client_addr: &str,
    user_agent: &str,
) -> Result<SignedIn, AccountsError> {
    let now = app.clock.now();
    let cfg = app.config.login.clone();
    let typed: String = username.trim().chars().take(128).collect();
    let actor = Actor { id: None, name: typed.clone(), addr: client_addr.into() };

    let (name, addr, c) = (typed.clone(), client_addr.to_string(), cfg.clone());
    let wait = app.db.read(move |conn| throttle::check(conn, &c, &name, &addr, now)).await?;
    if let Some(retry_after_secs) = wait {
        let e = actor
            .event("sign-in")
            .outcome(Outcome::Denied)
            .detail(format!("throttled for {retry_after_secs}s"));
        app.db.write(move |conn| audit::record(conn, &e, now).map_err(AccountsError::from)).await?;
        return Err(AccountsError::Throttled { retry_after_secs });
    }

    let name = typed.clone();
    let creds = app.db.read(move |conn| users::credentials(conn, &name)).await?;
    let stored = creds.as_ref().and_then(|(_, h)| h.clone());
    let ok = verify(&app.hasher, password, stored.clone()).await?;
    let Some((user, _)) = creds.filter(|_| ok) else {
        let (name, addr) = (typed.clone(), client_addr.to_string());
        app.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let locked = throttle::record_failure(&tx, &cfg, &name, &addr, now)?;
                audit::record(
                    &tx,
                    &actor.event("sign-in").outcome(Outcome::Failure).detail("wrong username or password"),
                    now,
                )?;
                if locked {
                    audit::record(
                        &tx,
                        &actor.event("sign-in.locked").target("user", &name, &name).outcome(Outcome::Denied),
                        now,
                    )?;
                }
                tx.commit()?;
                Ok::<_, AccountsError>(())
            })
            .await?;
        return Err(AccountsError::InvalidCredentials);
    };
    let actor = Actor { id: Some(user.id), name: user.username.clone(), addr: client_addr.into() };
    if user.disabled {
        let e = actor.event("sign-in").outcome(Outcome::Denied).detail("account disabled");
        app.db.write(move |conn| audit::record(conn, &e, now).map_err(AccountsError::from)).await?;
        return Err(AccountsError::Disabled);
    }
    let rehashed = match stored {
        Some(hash) if app.hasher.needs_rehash(&hash) => {
            let (h, pw) = (app.hasher.clone(), password.to_string());
            tokio::task::spawn_blocking(move || h.hash(&pw)).await.ok().and_then(Result::ok)
        }
        _ => None,
    };
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let (addr, ua) = (client_addr.to_string(), user_agent.to_string());
    let uid = user.id;
    let uname = user.username.clone();
    let session = app
        .db
        .write(move |conn| {
            let tx = conn.transaction()?;
            throttle::clear(&tx, &uname)?;
            users::record_login(&tx, uid, now)?;
            if let Some(hash) = &rehashed {
                users::rehash(&tx, uid, hash)?;
            }
            let session = sessions::create(&tx, uid, policy, now, &addr, &ua)?;
            let detail = if rehashed.is_some() { "password hash upgraded" } else { "" };
            audit::record(&tx, &actor.event("sign-in").target("user", uid, &uname).detail(detail), now)?;
            tx.commit()?;
            Ok::<_, AccountsError>(session)
        })
        .await?;
    Ok(SignedIn { user, session })
}

pub async fn sign_out(app: &App, actor: &Actor, session: SessionId) -> Result<(), AccountsError> {
    let now = app.clock.now();
    let e = actor.event("sign-out");
    app.db
        .write(move |conn| {
            sessions::revoke(conn, session)?;
            audit::record(conn, &e, now)?;
            Ok(())
        })
        .await
}

/// A person changes their own password. Their other sessions end; this one stays.
pub async fn change_own_password(
    app: &App,
    actor: &Actor,
    user: &User,
    current: &str,
    new: &str,
    keep: Option<SessionId>,
) -> Result<(), AccountsError> {
    let uid = user.id;
    let stored = app.db.read(move |c| users::password_hash(c, uid)).await?;
    if stored.is_none() || !verify(&app.hasher, current, stored).await? {
        return Err(AccountsError::WrongCurrentPassword);
    }
    if current == new {
        return Err(AccountsError::Refused("the new password must differ from the current one"));
    }
    let hash = prepare_password(&app.hasher, &user.username, new).await?;
    let now = app.clock.now();
    let e = actor.event("user.password-change").target("user", uid, &user.username);
    app.db
        .write(move |conn| {
            users::set_password_hash(conn, uid, &hash, false, Some(keep))?;
            audit::record(conn, &e, now)?;
            Ok(())
        })
        .await
}

/// An administrator sets a temporary password; the person must change it at next sign-in and
/// their current sessions end.
pub async fn set_temporary_password(
    app: &App,
    actor: &Actor,
    target: UserId,
    new: &str,
) -> Result<(), AccountsError> {
    let user = app.db.read(move |c| users::require(c, target)).await?;
    let hash = prepare_password(&app.hasher, &user.username, new).await?;
    let now = app.clock.now();
    let e = actor.event("user.password-reset").target("user", target, &user.username);
    app.db
        .write(move |conn| {
            users::set_password_hash(conn, target, &hash, true, Some(None))?;
            throttle::clear(conn, &user.username)?;
            audit::record(conn, &e, now)?;
            Ok(())
        })
        .await
}

/// The one-time link that lets the first administrator be created from the browser.
#[derive(Debug, Default)]
pub struct SetupLink {
    inner: Mutex<Option<(Vec<u8>, Timestamp)>>,
}

impl SetupLink {
    /// Make a new token valid until `expires` (replacing any earlier one); returns it.
    pub fn issue(&self, expires: Timestamp) -> String {
        let token = super::random_token();
        if let Ok(mut slot) = self.inner.lock() {
            *slot = Some((super::token_hash(&token), expires));
        }
        token
    }

    pub fn is_valid(&self, token: &str, now: Timestamp) -> bool {
        let hash = super::token_hash(token);
        self.inner
            .lock()
            .map(|slot| matches!(&*slot, Some((h, exp)) if *h == hash && now < *exp))
            .unwrap_or(false)
    }

    pub fn close(&self) {
        if let Ok(mut slot) = self.inner.lock() {
            *slot = None;
        }
    }
}

/// Create the first administrator through the setup link, then close the link.
pub async fn complete_setup(
    app: &App,
    token: &str,
    username: &str,
    display_name: &str,
    password: &str,
    client_addr: &str,
) -> Result<User, AccountsError> {
    let now = app.clock.now();
    if !app.setup.is_valid(token, now) {
        return Err(AccountsError::Refused(
            "this setup link is not valid any more; restart reelbox to get a new one",
        ));
    }
    users::check_username(username)?;
    let hash = prepare_password(&app.hasher, username, password).await?;
    let (username, display_name, addr) =
        (username.to_string(), display_name.to_string(), client_addr.to_string());
    let user = app
        .db
        .write(move |conn| {
            let tx = conn.transaction()?;
            if users::admin_exists(&tx)? {
                return Err(AccountsError::Refused("an administrator already exists; sign in instead"));
            }
            let user = users::create(
                &tx,
                NewUser {
                    username: &username,
                    display_name: &display_name,
                    email: None,
                    password_hash: Some(hash),
                    is_admin: true,
                    must_change_password: false,
                },
                now,
            )?;
            let e = Event::new("setup.admin-created")
                .actor(Some(user.id), &user.username)
                .addr(&addr)
                .target("user", user.id, &user.username);
            audit::record(&tx, &e, now)?;
            tx.commit()?;
            Ok(user)
        })
        .await?;
    app.setup.close();
    Ok(user)
}
