//! The rows of the authorization matrix and the vocabulary they are written in.

use reqwest::Method;

use super::BYSTANDER;

#[derive(Clone, Copy, Debug)]
pub enum Cat {
    C,
    D,
}

/// A path parameter, resolved per call.
#[derive(Clone, Copy, Debug)]
pub enum P {
    Category(Cat),
    /// A group nobody's access depends on.
    Group,
    /// The bystander account.
    User,
    /// The bystander's grant on the category.
    Grant(Cat),
    /// The caller's own API token (the bystander's for anonymous callers).
    OwnToken,
    /// Someone else's (the bystander's) API token.
    OtherToken,
    FreshGrant(Cat),
    FreshGroup,
    FreshOwnToken,
    FreshOtherToken,
    /// A session of a throwaway account.
    FreshSession,
    /// Two parameters: a throwaway account and its session.
    FreshUserSession,
    FreshUser,
    /// A new empty category below the given one (inherits its grants).
    FreshChild(Cat),
    /// Two parameters: a throwaway group and the bystander, who is a member of it.
    FreshMembership,
    /// The same, the other way round: the bystander and the throwaway group.
    FreshMembershipOfUser,
    /// A ready media item (an image) in the category, uploaded by the administrator.
    Media(Cat),
    /// A new tus upload into C started by the contributor (not finished).
    FreshUpload,
    /// A new ready item in the category, uploaded by the administrator.
    FreshMedia(Cat),
    /// The same, then moved to the recycle bin.
    FreshRecycled(Cat),
    /// The same, then deleted permanently (archived).
    FreshArchived(Cat),
    /// Two parameters: a new decodable image in the category (so it has thumbnails), uploaded
    /// by the administrator, and the thumbnail size 320.
    FreshThumbnail(Cat),
    /// A video item (a real one-second clip) in the category, uploaded by the administrator,
    /// with files published in the transcoder's layout and English captions.
    Video(Cat),
    /// A rung name of the published files of `Video(_)` ("240p").
    Rung,
    /// A segment of that rung ("seg-00001.m4s").
    Segment,
    /// The English captions file of `Video(_)` ("en.vtt").
    CaptionFile,
    /// Two parameters: a new item in the category with English captions, and "en".
    FreshCaptions(Cat),
}

#[derive(Clone, Copy, Debug)]
pub enum Body {
    None,
    Form(&'static [(&'static str, &'static str)]),
    Json(&'static str),
    /// A small PNG with its `Content-Digest`, as `POST /api/v1/media` takes it.
    Upload,
    /// tus creation headers for the small PNG into the category (`Upload-Metadata`).
    TusCreate(Cat),
    /// The first bytes of the small PNG at offset 0.
    TusChunk,
    /// A small SubRip caption file.
    Captions,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cred {
    /// Browser session cookie (pages).
    Session,
    /// `Authorization: Bearer` (API).
    Token,
}

pub struct Case {
    pub what: &'static str,
    pub params: Vec<P>,
    pub query: &'static str,
    pub body: Body,
    pub cred: Option<Cred>,
    /// Use a new session of the persona (the call ends it).
    pub fresh_session: bool,
    /// The call changes the persona's password: change it back afterwards.
    pub revert_password: bool,
    pub expect: [u16; 7],
}

pub fn case(expect: [u16; 7]) -> Case {
    Case {
        what: "",
        params: Vec::new(),
        query: "",
        body: Body::None,
        cred: None,
        fresh_session: false,
        revert_password: false,
        expect,
    }
}

impl Case {
    pub fn on(mut self, what: &'static str, params: &[P]) -> Self {
        self.what = what;
        self.params = params.to_vec();
        self
    }
    pub fn form(mut self, fields: &'static [(&'static str, &'static str)]) -> Self {
        self.body = Body::Form(fields);
        self
    }
    pub fn json(mut self, body: &'static str) -> Self {
        self.body = Body::Json(body);
        self
    }
    pub fn query(mut self, q: &'static str) -> Self {
        self.query = q;
        self
    }
    pub fn body_tus(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    pub fn body_upload(mut self) -> Self {
        self.body = Body::Upload;
        self
    }
    pub fn cred(mut self, c: Cred) -> Self {
        self.cred = Some(c);
        self
    }
}

pub struct Row {
    pub method: Method,
    pub path: &'static str,
    pub cases: Vec<Case>,
}

pub fn row(method: Method, path: &'static str, cases: Vec<Case>) -> Row {
    Row { method, path, cases }
}

// Expected statuses, in the order of PERSONAS.
pub const EVERYONE_200: [u16; 7] = [200; 7];
pub const PAGE_SIGNED_IN: [u16; 7] = [303, 200, 200, 200, 200, 200, 200];
pub const PAGE_ADMIN: [u16; 7] = [303, 403, 403, 403, 403, 403, 200];
pub const PAGE_ADMIN_POST: [u16; 7] = [303, 403, 403, 403, 403, 403, 303];

pub const fn api_admin(ok: u16) -> [u16; 7] {
    [401, 403, 403, 403, 403, 403, ok]
}
pub const fn api_signed_in(ok: u16) -> [u16; 7] {
    [401, ok, ok, ok, ok, ok, ok]
}
/// Needs manage on C: no grants → 404 (C is hidden), lower roles → 403.
pub const fn manage_c(anon: u16, ok: u16) -> [u16; 7] {
    [anon, 404, 403, 403, 403, ok, ok]
}
/// Anything on D: hidden from everyone but the administrator.
pub const fn only_admin_sees_d(anon: u16, ok: u16) -> [u16; 7] {
    [anon, 404, 404, 404, 404, 404, ok]
}
/// An upload started by the contributor: theirs and the administrator's, missing for the rest.
pub const fn uploader(ok: u16) -> [u16; 7] {
    [401, 404, 404, ok, 404, 404, ok]
}
pub const UPLOADER: [u16; 7] = uploader(200);
/// A recycled item in C: only its category's managers and administrators see it.
pub const RECYCLED_IN_C: [u16; 7] = [401, 404, 404, 404, 404, 200, 200];
/// The same item, acted on from a page (success redirects).
pub const RECYCLED_IN_C_POST: [u16; 7] = [303, 404, 404, 404, 404, 303, 303];
/// Someone else's token: hidden from everyone but the administrator.
pub const fn others_token(anon: u16, ok: u16) -> [u16; 7] {
    [anon, 404, 404, 404, 404, 404, ok]
}

/// A media file of the item in C and in D (with `more` parameters after the item), and of a
/// recycled item in C: nothing is served for it, not even to its managers.
fn media_file_cases(more: &[P]) -> Vec<Case> {
    let with = |item: P| {
        let mut params = vec![item];
        params.extend_from_slice(more);
        params
    };
    vec![
        Case { params: with(P::Video(Cat::C)), what: "in C", ..case([303, 404, 200, 200, 200, 200, 200]) },
        Case { params: with(P::Video(Cat::D)), what: "in D", ..case(only_admin_sees_d(303, 200)) },
        Case {
            params: with(P::FreshRecycled(Cat::C)),
            what: "recycled in C",
            ..case([303, 404, 404, 404, 404, 404, 404])
        },
    ]
}

/// The matrix. Every route of `reelbox::web::endpoints()` appears exactly once.
pub fn table() -> Vec<Row> {
    use Cat::{C, D};
    use Method as M;
    use P::*;
    vec![
        // Sign-in, sign-out, setup.
        row(M::GET, "/login", vec![case([200, 303, 303, 303, 303, 303, 303])]),
        row(
            M::POST,
            "/login",
            vec![case([303; 7]).form(&[("username", "probe"), ("password", "$PW"), ("next", "/")])],
        ),
        row(M::POST, "/logout", vec![Case { fresh_session: true, ..case([303; 7]).form(&[]) }]),
        // An administrator exists by now (created on the command line), which closes the setup
        // link: the page and a complete, valid form answer "link not valid" (404) for everyone.
        row(M::GET, "/setup", vec![case([404; 7]).query("token=$SETUP")]),
        row(
            M::POST,
            "/setup",
            vec![case([404; 7]).form(&[
                ("token", "$SETUP"),
                ("username", "late-admin"),
                ("password", "$PW"),
                ("password_confirm", "$PW"),
            ])],
        ),
        // The library.
        row(M::GET, "/", vec![case(PAGE_SIGNED_IN)]),
        row(
            M::GET,
            "/categories/{id}",
            vec![
                case([303, 404, 200, 200, 200, 200, 200]).on("C", &[Category(C)]),
                case(only_admin_sees_d(303, 200)).on("D", &[Category(D)]),
            ],
        ),
        row(
            M::GET,
            "/categories/{id}/access",
            vec![
                case(manage_c(303, 200)).on("C", &[Category(C)]),
                case(only_admin_sees_d(303, 200)).on("D", &[Category(D)]),
            ],
        ),
        row(
            M::POST,
            "/categories/{id}/access",
            vec![
                case(manage_c(303, 303))
                    .on("C", &[Category(C)])
                    .form(&[("username", BYSTANDER), ("role", "view")]),
                case(only_admin_sees_d(303, 303))
                    .on("D", &[Category(D)])
                    .form(&[("username", BYSTANDER), ("role", "view")]),
            ],
        ),
        row(
            M::GET,
            "/categories/{id}/access/{grant}/remove",
            vec![
                case(manage_c(303, 200)).on("C", &[Category(C), Grant(C)]),
                case(only_admin_sees_d(303, 200)).on("D", &[Category(D), Grant(D)]),
            ],
        ),
        row(
            M::POST,
            "/categories/{id}/access/{grant}/remove",
            vec![
                case(manage_c(303, 303)).on("C", &[Category(C), FreshGrant(C)]).form(&[]),
                case(only_admin_sees_d(303, 303)).on("D", &[Category(D), FreshGrant(D)]).form(&[]),
            ],
        ),
        // The upload page explains itself to people who may not contribute anywhere.
        row(M::GET, "/upload", vec![case(PAGE_SIGNED_IN)]),
        // Media item pages, edit form, thumbnails and search (the item in C/D is the administrator's).
        row(
            M::GET,
            "/media/{id}",
            vec![
                case([303, 404, 200, 200, 200, 200, 200]).on("in C", &[Media(C)]),
                case(only_admin_sees_d(303, 200)).on("in D", &[Media(D)]),
            ],
        ),
        row(
            M::GET,
            "/media/{id}/edit",
            vec![
                case([303, 404, 403, 403, 200, 200, 200]).on("in C", &[Media(C)]),
                case(only_admin_sees_d(303, 200)).on("in D", &[Media(D)]),
            ],
        ),
        row(
            M::POST,
            "/media/{id}/edit",
            vec![
                case([303, 404, 403, 403, 303, 303, 303])
                    .on("in C", &[FreshMedia(C)])
                    .form(&[("title", "Edited")]),
                case(only_admin_sees_d(303, 303)).on("in D", &[FreshMedia(D)]).form(&[("title", "Edited")]),
            ],
        ),
        row(
            M::GET,
            "/media/{id}/thumbnail/{size}",
            vec![
                case([303, 404, 200, 200, 200, 200, 200]).on("in C", &[FreshThumbnail(C)]),
                case(only_admin_sees_d(303, 200)).on("in D", &[FreshThumbnail(D)]),
            ],
        ),
        row(M::GET, "/search", vec![case(EVERYONE_200).query("q=sample")]),
        // Media files of items (published files in the transcoder's layout): the item's viewers,
        // never for recycled items; the embed page prompts anonymous visitors to sign in.
        row(M::GET, "/media/{id}/hls/master.m3u8", media_file_cases(&[])),
        row(M::GET, "/media/{id}/hls/{rung}/{file}", media_file_cases(&[Rung, Segment])),
        row(M::GET, "/media/{id}/download.mp4", media_file_cases(&[])),
        row(M::GET, "/media/{id}/download.m4a", media_file_cases(&[])),
        row(M::GET, "/media/{id}/poster.jpg", media_file_cases(&[])),
        row(M::GET, "/media/{id}/sprite.jpg", media_file_cases(&[])),
        row(M::GET, "/media/{id}/sprite.vtt", media_file_cases(&[])),
        row(M::GET, "/media/{id}/captions/{lang}.vtt", media_file_cases(&[CaptionFile])),
        row(
            M::GET,
            "/embed/{id}",
            vec![
                case([200, 404, 200, 200, 200, 200, 200]).on("in C", &[Video(C)]),
                case([200, 404, 404, 404, 404, 404, 200]).on("in D", &[Video(D)]),
            ],
        ),
        row(
            M::GET,
            "/api/v1/media/{id}/captions",
            vec![
                case([401, 404, 200, 200, 200, 200, 200]).on("in C", &[Video(C)]),
                case(only_admin_sees_d(401, 200)).on("in D", &[Video(D)]),
            ],
        ),
        row(
            M::POST,
            "/api/v1/media/{id}/captions",
            vec![
                case([401, 404, 403, 403, 201, 201, 201])
                    .on("in C", &[Video(C)])
                    .query("lang=en")
                    .body_tus(Body::Captions),
                case(only_admin_sees_d(401, 201))
                    .on("in D", &[Video(D)])
                    .query("lang=en")
                    .body_tus(Body::Captions),
            ],
        ),
        row(
            M::DELETE,
            "/api/v1/media/{id}/captions/{lang}",
            vec![
                case([401, 404, 403, 403, 204, 204, 204]).on("in C", &[FreshCaptions(C)]),
                case(only_admin_sees_d(401, 204)).on("in D", &[FreshCaptions(D)]),
            ],
        ),
        row(
            M::PUT,
            "/api/v1/media/{id}/position",
            vec![
                case([401, 404, 204, 204, 204, 204, 204]).on("in C", &[Video(C)]).json(r#"{"seconds": 42}"#),
                case(only_admin_sees_d(401, 204)).on("in D", &[Video(D)]).json(r#"{"seconds": 42}"#),
            ],
        ),
        // My account.
        row(M::GET, "/account", vec![case(PAGE_SIGNED_IN)]),
        row(M::GET, "/account/password", vec![case(PAGE_SIGNED_IN)]),
        row(
            M::POST,
            "/account/password",
            vec![Case {
                revert_password: true,
                ..case([303; 7]).form(&[("current", "$PW"), ("new", "$PW2"), ("confirm", "$PW2")])
            }],
        ),
        row(M::POST, "/account/tokens", vec![case(PAGE_SIGNED_IN).form(&[("name", "page token $U")])]),
        row(
            M::GET,
            "/account/tokens/{id}/revoke",
            vec![
                case(PAGE_SIGNED_IN).on("own", &[OwnToken]),
                case(others_token(303, 200)).on("someone else's", &[OtherToken]),
            ],
        ),
        row(
            M::POST,
            "/account/tokens/{id}/revoke",
            vec![
                case([303; 7]).on("own", &[FreshOwnToken]).form(&[]),
                case(others_token(303, 303)).on("someone else's", &[FreshOtherToken]).form(&[]),
            ],
        ),
        // Administration pages.
        row(M::GET, "/admin", vec![case(PAGE_ADMIN)]),
        row(M::GET, "/admin/audit.csv", vec![case(PAGE_ADMIN)]),
        row(M::GET, "/admin/audit", vec![case(PAGE_ADMIN)]),
        // Administration: people.
        row(M::GET, "/admin/users", vec![case(PAGE_ADMIN)]),
        row(
            M::POST,
            "/admin/users",
            vec![case(PAGE_ADMIN_POST).form(&[("username", "adm-$U"), ("password", "$PW")])],
        ),
        row(M::GET, "/admin/users/{id}", vec![case(PAGE_ADMIN).on("", &[User])]),
        row(
            M::POST,
            "/admin/users/{id}",
            vec![
                case(PAGE_ADMIN_POST)
                    .on("", &[User])
                    .form(&[("display_name", "By Stander $U"), ("email", "")]),
            ],
        ),
        row(M::GET, "/admin/users/{id}/disable", vec![case(PAGE_ADMIN).on("", &[User])]),
        row(M::POST, "/admin/users/{id}/disable", vec![case(PAGE_ADMIN_POST).on("", &[FreshUser]).form(&[])]),
        row(M::POST, "/admin/users/{id}/enable", vec![case(PAGE_ADMIN_POST).on("", &[FreshUser]).form(&[])]),
        row(M::POST, "/admin/users/{id}/admin", vec![case(PAGE_ADMIN_POST).on("", &[FreshUser]).form(&[])]),
        row(M::GET, "/admin/users/{id}/unadmin", vec![case(PAGE_ADMIN).on("", &[User])]),
        row(M::POST, "/admin/users/{id}/unadmin", vec![case(PAGE_ADMIN_POST).on("", &[FreshUser]).form(&[])]),
        row(
            M::POST,
            "/admin/users/{id}/password",
            vec![case(PAGE_ADMIN_POST).on("", &[FreshUser]).form(&[("password", "quiet harbour lantern")])],
        ),
        row(M::POST, "/admin/users/{id}/unlock", vec![case(PAGE_ADMIN_POST).on("", &[User]).form(&[])]),
        row(M::GET, "/admin/users/{id}/sessions/end", vec![case(PAGE_ADMIN).on("", &[User])]),
        row(
            M::POST,
            "/admin/users/{id}/sessions/end",
            vec![case(PAGE_ADMIN_POST).on("", &[FreshUser]).form(&[])],
        ),
        row(
            M::GET,
            "/admin/users/{id}/sessions/{sid}/end",
            vec![case(PAGE_ADMIN).on("", &[FreshUserSession])],
        ),
        row(
            M::POST,
            "/admin/users/{id}/sessions/{sid}/end",
            vec![case(PAGE_ADMIN_POST).on("", &[FreshUserSession]).form(&[])],
        ),
        row(
            M::POST,
            "/admin/users/{id}/groups",
            vec![case(PAGE_ADMIN_POST).on("", &[User]).form(&[("group_id", "$G")])],
        ),
        row(
            M::GET,
            "/admin/users/{id}/groups/{gid}/remove",
            vec![case(PAGE_ADMIN).on("", &[FreshMembershipOfUser])],
        ),
        row(
            M::POST,
            "/admin/users/{id}/groups/{gid}/remove",
            vec![case(PAGE_ADMIN_POST).on("", &[FreshMembershipOfUser]).form(&[])],
        ),
        // Administration: groups.
        row(M::GET, "/admin/groups", vec![case(PAGE_ADMIN)]),
        row(M::POST, "/admin/groups", vec![case(PAGE_ADMIN_POST).form(&[("name", "admin group $U")])]),
        row(M::GET, "/admin/groups/{id}", vec![case(PAGE_ADMIN).on("", &[Group])]),
        row(
            M::POST,
            "/admin/groups/{id}",
            vec![
                case(PAGE_ADMIN_POST)
                    .on("", &[Group])
                    .form(&[("name", "spare"), ("description", "renamed $U")]),
            ],
        ),
        row(
            M::POST,
            "/admin/groups/{id}/members",
            vec![case(PAGE_ADMIN_POST).on("", &[Group]).form(&[("username", BYSTANDER)])],
        ),
        row(
            M::GET,
            "/admin/groups/{id}/members/{user_id}/remove",
            vec![case(PAGE_ADMIN).on("", &[FreshMembership])],
        ),
        row(
            M::POST,
            "/admin/groups/{id}/members/{user_id}/remove",
            vec![case(PAGE_ADMIN_POST).on("", &[FreshMembership]).form(&[])],
        ),
        row(M::GET, "/admin/groups/{id}/delete", vec![case(PAGE_ADMIN).on("", &[Group])]),
        row(
            M::POST,
            "/admin/groups/{id}/delete",
            vec![case(PAGE_ADMIN_POST).on("", &[FreshGroup]).form(&[])],
        ),
        // Administration: categories (C is top level; the form states every field).
        row(M::GET, "/admin/categories", vec![case(PAGE_ADMIN)]),
        row(M::POST, "/admin/categories", vec![case(PAGE_ADMIN_POST).form(&[("name", "admin category $U")])]),
        row(
            M::GET,
            "/admin/categories/{id}",
            vec![case(PAGE_ADMIN).on("C", &[Category(C)]), case(PAGE_ADMIN).on("D", &[Category(D)])],
        ),
        row(
            M::POST,
            "/admin/categories/{id}",
            vec![case(PAGE_ADMIN_POST).on("C", &[Category(C)]).form(&[
                ("name", "Science"),
                ("description", "updated $U"),
                ("parent_id", ""),
            ])],
        ),
        row(M::GET, "/admin/categories/{id}/delete", vec![case(PAGE_ADMIN).on("", &[Category(C)])]),
        row(
            M::POST,
            "/admin/categories/{id}/delete",
            vec![case(PAGE_ADMIN_POST).on("", &[FreshChild(C)]).form(&[])],
        ),
        // Administration: API tokens.
        row(M::GET, "/admin/tokens", vec![case(PAGE_ADMIN)]),
        row(M::GET, "/admin/tokens/{id}/revoke", vec![case(PAGE_ADMIN).on("", &[OtherToken])]),
        row(
            M::POST,
            "/admin/tokens/{id}/revoke",
            vec![case(PAGE_ADMIN_POST).on("", &[FreshOtherToken]).form(&[])],
        ),
        // Operations: loopback may read metrics without credentials, a non-admin token may not.
        row(M::GET, "/healthz", vec![case(EVERYONE_200)]),
        row(
            M::GET,
            "/metrics",
            vec![
                case([200, 403, 403, 403, 403, 403, 200]).on("API token", &[]).cred(Cred::Token),
                case(EVERYONE_200).on("session", &[]).cred(Cred::Session),
            ],
        ),
        // The replica pair: replication needs the shared secret (this server has none), so
        // everyone is refused; promoting a primary is refused as a conflict.
        row(M::GET, "/replication/v1/records", vec![case([401; 7]).query("generation=0&after=0")]),
        row(M::GET, "/replication/v1/snapshot", vec![case([401; 7])]),
        row(M::GET, "/replication/v1/blobs/{sha256}", vec![case([401; 7]).on("", &[Rung])]),
        row(M::POST, "/replication/v1/touch", vec![case([401; 7]).json("{}")]),
        row(M::POST, "/replication/v1/audit", vec![case([401; 7]).json("{}")]),
        row(M::GET, "/replication/v1/media/{id}/files", vec![case([401; 7]).on("in C", &[Media(C)])]),
        row(
            M::GET,
            "/replication/v1/media/{id}/file",
            vec![case([401; 7]).on("in C", &[Media(C)]).query("path=hls/master.m3u8")],
        ),
        row(M::POST, "/admin/replica/promote", vec![case([303, 403, 403, 403, 403, 403, 409]).form(&[])]),
        // JSON API: people.
        row(M::GET, "/api/v1/users", vec![case(api_admin(200))]),
        row(
            M::POST,
            "/api/v1/users",
            vec![
                case(api_admin(201))
                    .json(r#"{"username": "new-$U", "password": "$PW", "must_change_password": false}"#),
            ],
        ),
        row(M::GET, "/api/v1/users/{id}", vec![case(api_admin(200)).on("", &[User])]),
        row(
            M::PATCH,
            "/api/v1/users/{id}",
            vec![case(api_admin(200)).on("", &[User]).json(r#"{"display_name": "Bystander $U"}"#)],
        ),
        row(
            M::POST,
            "/api/v1/users/{id}/password",
            vec![case(api_admin(204)).on("", &[FreshUser]).json(r#"{"password": "quiet harbour lantern"}"#)],
        ),
        row(M::POST, "/api/v1/users/{id}/unlock", vec![case(api_admin(204)).on("", &[User])]),
        row(M::GET, "/api/v1/users/{id}/sessions", vec![case(api_admin(200)).on("", &[User])]),
        row(M::DELETE, "/api/v1/users/{id}/sessions", vec![case(api_admin(204)).on("", &[User])]),
        row(M::DELETE, "/api/v1/sessions/{id}", vec![case(api_admin(204)).on("", &[FreshSession])]),
        // Groups.
        row(M::GET, "/api/v1/groups", vec![case(api_admin(200))]),
        row(M::POST, "/api/v1/groups", vec![case(api_admin(201)).json(r#"{"name": "group $U"}"#)]),
        row(M::GET, "/api/v1/groups/{id}", vec![case(api_admin(200)).on("", &[Group])]),
        row(M::DELETE, "/api/v1/groups/{id}", vec![case(api_admin(204)).on("", &[FreshGroup])]),
        row(
            M::POST,
            "/api/v1/groups/{id}/members",
            vec![case(api_admin(204)).on("", &[Group]).json(r#"{"username": "bystander"}"#)],
        ),
        row(
            M::DELETE,
            "/api/v1/groups/{id}/members/{user_id}",
            vec![case(api_admin(204)).on("", &[FreshMembership])],
        ),
        // Tokens.
        row(M::GET, "/api/v1/tokens", vec![case(api_signed_in(200))]),
        row(M::POST, "/api/v1/tokens", vec![case(api_signed_in(201)).json(r#"{"name": "api token $U"}"#)]),
        row(
            M::DELETE,
            "/api/v1/tokens/{id}",
            vec![
                case(api_signed_in(204)).on("own", &[FreshOwnToken]),
                case(others_token(401, 204)).on("someone else's", &[FreshOtherToken]),
            ],
        ),
        // Categories.
        row(M::GET, "/api/v1/categories", vec![case(EVERYONE_200)]),
        row(
            M::POST,
            "/api/v1/categories",
            vec![
                case(api_admin(201)).on("top level", &[]).json(r#"{"name": "top $U"}"#),
                case(manage_c(401, 201)).on("below C", &[]).json(r#"{"name": "child $U", "parent_id": $C}"#),
                case(only_admin_sees_d(401, 201))
                    .on("below D", &[])
                    .json(r#"{"name": "child $U", "parent_id": $D}"#),
            ],
        ),
        row(
            M::GET,
            "/api/v1/categories/{id}",
            vec![
                case([401, 404, 200, 200, 200, 200, 200]).on("C", &[Category(C)]),
                case(only_admin_sees_d(401, 200)).on("D", &[Category(D)]),
            ],
        ),
        row(
            M::PATCH,
            "/api/v1/categories/{id}",
            vec![
                case(manage_c(401, 200)).on("C", &[Category(C)]).json(r#"{"description": "changed $U"}"#),
                case(only_admin_sees_d(401, 200))
                    .on("D", &[Category(D)])
                    .json(r#"{"description": "changed $U"}"#),
            ],
        ),
        row(
            M::DELETE,
            "/api/v1/categories/{id}",
            vec![
                case(api_admin(204)).on("below C", &[FreshChild(C)]),
                case(api_admin(204)).on("below D", &[FreshChild(D)]),
            ],
        ),
        row(
            M::GET,
            "/api/v1/categories/{id}/grants",
            vec![
                case(manage_c(401, 200)).on("C", &[Category(C)]),
                case(only_admin_sees_d(401, 200)).on("D", &[Category(D)]),
            ],
        ),
        row(
            M::PUT,
            "/api/v1/categories/{id}/grants",
            vec![
                case(manage_c(401, 204))
                    .on("below C", &[FreshChild(C)])
                    .json(r#"[{"username": "bystander", "role": "view"}]"#),
                case(only_admin_sees_d(401, 204))
                    .on("below D", &[FreshChild(D)])
                    .json(r#"[{"username": "bystander", "role": "view"}]"#),
            ],
        ),
        row(
            M::GET,
            "/api/v1/categories/{id}/access",
            vec![
                case(manage_c(401, 200)).on("C", &[Category(C)]),
                case(only_admin_sees_d(401, 200)).on("D", &[Category(D)]),
            ],
        ),
        // Media.
        row(
            M::POST,
            "/api/v1/media",
            vec![
                case([401, 404, 403, 201, 201, 201, 201])
                    .on("into C", &[])
                    .query("category=$C&filename=m$U.png")
                    .body_upload(),
                case(only_admin_sees_d(401, 201))
                    .on("into D", &[])
                    .query("category=$D&filename=m$U.png")
                    .body_upload(),
            ],
        ),
        row(
            M::GET,
            "/api/v1/media/{id}",
            vec![
                case([401, 404, 200, 200, 200, 200, 200]).on("in C", &[Media(C)]),
                case(only_admin_sees_d(401, 200)).on("in D", &[Media(D)]),
                case(RECYCLED_IN_C).on("recycled in C", &[FreshRecycled(C)]),
                case(only_admin_sees_d(401, 200)).on("archived in C", &[FreshArchived(C)]),
            ],
        ),
        // Recycle bin and archive: recycled items are the managers', archived ones the administrators'.
        row(
            M::DELETE,
            "/api/v1/media/{id}",
            vec![
                case(manage_c(401, 200)).on("ready in C", &[FreshMedia(C)]),
                case(only_admin_sees_d(401, 200)).on("ready in D", &[FreshMedia(D)]),
                case(RECYCLED_IN_C)
                    .on("recycled in C, permanently", &[FreshRecycled(C)])
                    .query("permanent=true"),
            ],
        ),
        row(
            M::POST,
            "/api/v1/media/{id}/restore",
            vec![
                case(RECYCLED_IN_C).on("recycled in C", &[FreshRecycled(C)]),
                case(only_admin_sees_d(401, 200)).on("recycled in D", &[FreshRecycled(D)]),
                case(only_admin_sees_d(401, 200)).on("archived in C", &[FreshArchived(C)]),
            ],
        ),
        row(
            M::GET,
            "/api/v1/recycle",
            vec![
                case(api_signed_in(200)).on("the bin", &[]),
                case(api_admin(200)).on("the archive", &[]).query("archived=true"),
            ],
        ),
        row(
            M::GET,
            "/media/{id}/delete",
            vec![case([303, 404, 403, 403, 403, 200, 200]).on("ready in C", &[FreshMedia(C)])],
        ),
        row(
            M::POST,
            "/media/{id}/delete",
            vec![case([303, 404, 403, 403, 403, 303, 303]).on("ready in C", &[FreshMedia(C)]).form(&[])],
        ),
        row(M::GET, "/recycle", vec![case(PAGE_SIGNED_IN)]),
        // My uploads: every signed-in person sees their own list (empty or not).
        row(M::GET, "/my/uploads", vec![case(PAGE_SIGNED_IN), case(PAGE_SIGNED_IN).query("page=2")]),
        row(
            M::POST,
            "/recycle/{id}/restore",
            vec![case(RECYCLED_IN_C_POST).on("recycled in C", &[FreshRecycled(C)]).form(&[])],
        ),
        row(
            M::GET,
            "/recycle/{id}/delete",
            vec![case([303, 404, 404, 404, 404, 200, 200]).on("recycled in C", &[FreshRecycled(C)])],
        ),
        row(
            M::POST,
            "/recycle/{id}/delete",
            vec![case(RECYCLED_IN_C_POST).on("recycled in C", &[FreshRecycled(C)]).form(&[])],
        ),
        row(M::GET, "/admin/archive", vec![case(PAGE_ADMIN)]),
        row(
            M::POST,
            "/admin/archive/{id}/restore",
            vec![case(PAGE_ADMIN_POST).on("archived in C", &[FreshArchived(C)]).form(&[])],
        ),
        row(
            M::GET,
            "/api/v1/media/{id}/original",
            vec![
                case([401, 404, 200, 200, 200, 200, 200]).on("in C", &[Media(C)]),
                case(only_admin_sees_d(401, 200)).on("in D", &[Media(D)]),
            ],
        ),
        row(
            M::PATCH,
            "/api/v1/media/{id}",
            vec![
                case([401, 404, 403, 403, 200, 200, 200])
                    .on("in C", &[FreshMedia(C)])
                    .json(r#"{"title":"Edited"}"#),
                case(only_admin_sees_d(401, 200)).on("in D", &[FreshMedia(D)]).json(r#"{"title":"Edited"}"#),
            ],
        ),
        // Retrying a conversion: the owner, edit on the category, administrators. An image has
        // nothing to convert, so those allowed get 409.
        row(
            M::POST,
            "/api/v1/media/{id}/retry",
            vec![
                case([401, 404, 403, 403, 409, 409, 409]).on("ready image in C", &[FreshMedia(C)]),
                case(only_admin_sees_d(401, 409)).on("ready image in D", &[FreshMedia(D)]),
            ],
        ),
        row(
            M::GET,
            "/api/v1/media/{id}/thumbnail/{size}",
            vec![
                case([401, 404, 200, 200, 200, 200, 200]).on("in C", &[FreshThumbnail(C)]),
                case(only_admin_sees_d(401, 200)).on("in D", &[FreshThumbnail(D)]),
            ],
        ),
        row(M::GET, "/api/v1/search", vec![case(EVERYONE_200).query("q=sample")]),
        // Resumable uploads (tus): an upload is its uploader's (and administrators').
        row(M::OPTIONS, "/api/v1/uploads", vec![case([204; 7])]),
        row(
            M::POST,
            "/api/v1/uploads",
            vec![
                case([401, 404, 403, 201, 201, 201, 201]).on("into C", &[]).body_tus(Body::TusCreate(C)),
                case(only_admin_sees_d(401, 201)).on("into D", &[]).body_tus(Body::TusCreate(D)),
            ],
        ),
        row(M::HEAD, "/api/v1/uploads/{id}", vec![case(UPLOADER).on("the contributor's", &[FreshUpload])]),
        row(
            M::PATCH,
            "/api/v1/uploads/{id}",
            vec![case(uploader(204)).on("the contributor's", &[FreshUpload]).body_tus(Body::TusChunk)],
        ),
        row(
            M::DELETE,
            "/api/v1/uploads/{id}",
            vec![case(uploader(204)).on("the contributor's", &[FreshUpload])],
        ),
        // Identity, audit, description.
        row(M::GET, "/api/v1/me", vec![case(api_signed_in(200))]),
        row(M::GET, "/api/v1/audit", vec![case(api_admin(200))]),
        row(M::GET, "/api/v1/openapi.json", vec![case(EVERYONE_200)]),
    ]
}
