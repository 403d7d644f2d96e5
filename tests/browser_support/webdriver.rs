//! A small W3C WebDriver client over reqwest: just the commands a person's actions need
//! (open a page, type, click, read, press a key, take a screenshot, run a script).
//!
//! Why not fantoccini: with its default features off (no TLS stack) it offers no HTTP connector,
//! and building one needs `hyper-util` as a direct dependency. Plain JSON over loopback HTTP is
//! all chromedriver, geckodriver and WebKitWebDriver need, and reqwest is already here.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::BrowserKind;

/// The W3C key for element references in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's code for the Tab key.
pub const TAB: &str = "\u{E004}";
/// How long to wait for a page or an element before giving up.
const PATIENCE: Duration = Duration::from_secs(15);

pub type Result<T> = std::result::Result<T, String>;

/// An element on the current page of one browser.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One browser (one WebDriver session with its own profile directory).
pub struct Browser {
    pub name: &'static str,
    pub kind: BrowserKind,
    http: reqwest::Client,
    session_url: String,
    app_base: String,
    /// Removed after the session is gone.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start a headless browser of `kind` through its WebDriver server at `driver_url`, with a
    /// fresh profile of its own.
    pub async fn start(
        kind: BrowserKind,
        driver_url: &str,
        binary: &Path,
        name: &'static str,
        app_base: &str,
    ) -> Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix(&format!("reelbox-{}-", kind.driver_name()))
            .tempdir()
            .map_err(|e| format!("cannot create a profile directory for the {name} browser: {e}"))?;
        let timeouts = json!({ "implicit": 0, "pageLoad": 30_000, "script": 10_000 });
        let capabilities = match kind {
            BrowserKind::Chromium => {
                let args = [
                    "--headless=new".to_string(),
                    "--no-sandbox".into(),
                    "--disable-gpu".into(),
                    "--disable-dev-shm-usage".into(),
                    "--no-first-run".into(),
                    "--no-default-browser-check".into(),
                    "--disable-background-networking".into(),
                    "--disable-component-update".into(),
                    "--disable-sync".into(),
                    // Loopback only: never route through a proxy from the environment.
                    "--no-proxy-server".into(),
                    "--window-size=1280,900".into(),
                    format!("--user-data-dir={}", profile.path().display()),
                ];
                json!({
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": timeouts,
                    "goog:chromeOptions": { "binary": binary.display().to_string(), "args": args },
                })
            }
            BrowserKind::Firefox => {
                // geckodriver writes its own preferences into the profile given with `-profile`.
                let args = [
                    "-headless".to_string(),
                    "-width".into(),
                    "1280".into(),
                    "-height".into(),
                    "900".into(),
                    "-profile".into(),
                    profile.path().display().to_string(),
                ];
                let prefs = json!({
                    // Loopback only: no proxy, whatever the environment says (5 = the system's).
                    "network.proxy.type": 0,
                    "app.update.disabledForTesting": true,
                    "browser.shell.checkDefaultBrowser": false,
                    "datareporting.policy.dataSubmissionEnabled": false,
                    "toolkit.telemetry.enabled": false,
                });
                json!({
                    "browserName": "firefox",
                    "pageLoadStrategy": "normal",
                    "timeouts": timeouts,
                    "moz:firefoxOptions": {
                        "binary": binary.display().to_string(),
                        "args": args,
                        "prefs": prefs,
                        "log": { "level": "info" },
                    },
                })
            }
            BrowserKind::WebKit => {
                // MiniBrowser only takes orders from a driver in `--automation` mode, and then
                // keeps its website data in memory (the profile directory stays unused). It has
                // no window-size option: the window is sized below, once the session exists.
                json!({
                    "pageLoadStrategy": "normal",
                    "timeouts": timeouts,
                    // Loopback only: no proxy, whatever the environment says.
                    "proxy": { "proxyType": "direct" },
                    "webkitgtk:browserOptions": {
                        "binary": binary.display().to_string(),
                        "args": ["--automation"],
                    },
                })
            }
        };
        let capabilities = json!({ "capabilities": { "alwaysMatch": capabilities } });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let value = send(&http, Method::POST, &format!("{driver_url}/session"), Some(capabilities))
            .await
            .map_err(|e| {
                format!(
                    "{} could not start {} ({}) for the {name} browser: {e}",
                    kind.driver_name(),
                    kind.name(),
                    binary.display()
                )
            })?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("{} answered a new session without an id: {value}", kind.driver_name()))?;
        let browser = Browser {
            name,
            kind,
            http,
            session_url: format!("{driver_url}/session/{id}"),
            app_base: app_base.trim_end_matches('/').to_string(),
            _profile: profile,
        };
        if kind == BrowserKind::WebKit {
            let size = json!({ "width": 1280, "height": 900 });
            browser.cmd(Method::POST, "/window/rect", Some(size)).await?;
        }
        Ok(browser)
    }

    /// End the session (the browser exits).
    pub async fn quit(self) -> Result<()> {
        send(&self.http, Method::DELETE, &self.session_url, None).await.map(|_| ())
    }

    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        send(&self.http, method, &format!("{}{path}", self.session_url), body)
            .await
            .map_err(|e| format!("[{} browser] {e}", self.name))
    }

    /// Open a path of the app (or a full URL).
    pub async fn goto(&self, path_or_url: &str) -> Result<()> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.app_base)
        };
        self.cmd(Method::POST, "/url", Some(json!({ "url": url }))).await.map(|_| ())
    }

    pub async fn refresh(&self) -> Result<()> {
        self.cmd(Method::POST, "/refresh", None).await.map(|_| ())
    }

    pub async fn current_url(&self) -> Result<String> {
        let v = self.cmd(Method::GET, "/url", None).await?;
        v.as_str().map(str::to_string).ok_or_else(|| format!("current URL is not a string: {v}"))
    }

    /// The current path without the query, e.g. `/admin/users/2`.
    pub async fn current_path(&self) -> Result<String> {
        Ok(path_of(&self.current_url().await?))
    }

    /// Wait until the current path satisfies `want`, and return it.
    pub async fn wait_for_path(&self, what: &str, want: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let path = self.current_path().await?;
            if want(&path) {
                return Ok(path);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "[{} browser] expected to be on {what}, but still on {} after {PATIENCE:?}; the page says:\n{}",
                    self.name,
                    self.current_url().await.unwrap_or(path),
                    self.page_text().await.unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn find_by(&self, using: &str, value: &str) -> Result<Option<Element>> {
        let body = json!({ "using": using, "value": value });
        match send(&self.http, Method::POST, &format!("{}/element", self.session_url), Some(body)).await {
            Ok(v) => element_of(&v).map(Some),
            Err(e) if e.contains("no such element") => Ok(None),
            Err(e) => Err(format!("[{} browser] {e}", self.name)),
        }
    }

    async fn wait_find(&self, using: &str, value: &str) -> Result<Element> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(el) = self.find_by(using, value).await? {
                return Ok(el);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "[{} browser] no element matches {using} `{value}` on {} after {PATIENCE:?}; the page says:\n{}",
                    self.name,
                    self.current_url().await.unwrap_or_default(),
                    self.page_text().await.unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching a CSS selector, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Result<Element> {
        self.wait_find("css selector", css).await
    }

    /// The first element matching an XPath expression, waiting for it to appear.
    pub async fn find_xpath(&self, xpath: &str) -> Result<Element> {
        self.wait_find("xpath", xpath).await
    }

    /// The first element matching an XPath expression now, if any (no waiting).
    pub async fn try_find_xpath(&self, xpath: &str) -> Result<Option<Element>> {
        self.find_by("xpath", xpath).await
    }

    pub async fn click(&self, el: &Element) -> Result<()> {
        self.cmd(Method::POST, &format!("/element/{}/click", el.0), None).await.map(|_| ())
    }

    pub async fn text(&self, el: &Element) -> Result<String> {
        let v = self.cmd(Method::GET, &format!("/element/{}/text", el.0), None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub async fn is_selected(&self, el: &Element) -> Result<bool> {
        let v = self.cmd(Method::GET, &format!("/element/{}/selected", el.0), None).await?;
        v.as_bool().ok_or_else(|| format!("`selected` is not a boolean: {v}"))
    }

    pub async fn attr(&self, el: &Element, name: &str) -> Result<Option<String>> {
        let v = self.cmd(Method::GET, &format!("/element/{}/attribute/{name}", el.0), None).await?;
        Ok(v.as_str().map(str::to_string))
    }

    /// A DOM property, e.g. `outerHTML`.
    pub async fn prop(&self, el: &Element, name: &str) -> Result<Option<String>> {
        let v = self.cmd(Method::GET, &format!("/element/{}/property/{name}", el.0), None).await?;
        Ok(v.as_str().map(str::to_string))
    }

    /// Where the element is on the page: (x, y, width, height) in CSS pixels.
    pub async fn rect(&self, el: &Element) -> Result<(f64, f64, f64, f64)> {
        let v = self.cmd(Method::GET, &format!("/element/{}/rect", el.0), None).await?;
        let n = |k: &str| v[k].as_f64().ok_or_else(|| format!("element rect without `{k}`: {v}"));
        Ok((n("x")?, n("y")?, n("width")?, n("height")?))
    }

    /// Type into a field the way a person would: focus it, clear it, type.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.cmd(Method::POST, &format!("/element/{}/clear", el.0), None).await?;
        self.cmd(Method::POST, &format!("/element/{}/value", el.0), Some(json!({ "text": text }))).await?;
        Ok(())
    }

    /// Click the button labelled exactly `label`, which submits a form, and wait for the page the
    /// submission loads.
    pub async fn click_button(&self, label: &str) -> Result<()> {
        let el = self.find_xpath(&format!("//button[normalize-space()={}]", xpath_literal(label))).await?;
        self.click_to_new_page(&el).await
    }

    /// Click the link labelled exactly `label` inside the element matched by `within` (XPath), and
    /// wait for the page it loads.
    pub async fn click_link(&self, within: &str, label: &str) -> Result<()> {
        let el = self.find_xpath(&format!("{within}//a[normalize-space()={}]", xpath_literal(label))).await?;
        self.click_to_new_page(&el).await
    }

    /// Click something that loads a new page and wait until the page it was on is gone. A form
    /// often answers with a redirect to the same path (`?notice=saved`), so waiting for a path
    /// is not enough: without this, what is read next may come from the old page, or fail as a
    /// stale element while the browser swaps the documents.
    pub async fn click_to_new_page(&self, el: &Element) -> Result<()> {
        // How drivers say an element's page has gone: a stale element (the standard answer), or
        // chromedriver's own words while it swaps the documents.
        const GONE: [&str; 3] = ["stale element", "no such element", "does not belong to the document"];
        let old = self.find("html").await?;
        self.click(el).await?;
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::from("the old page still answers");
        loop {
            let url = format!("{}/element/{}/name", self.session_url, old.0);
            match send(&self.http, Method::GET, &url, None).await {
                Err(e) if GONE.iter().any(|g| e.contains(g)) => return Ok(()),
                // Anything else mid-navigation is asked again; the last answer is reported.
                Err(e) => last = e,
                Ok(_) => {}
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "[{} browser] the click did not load a new page within {PATIENCE:?} ({last}); still on {}",
                    self.name,
                    self.current_url().await.unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the page shows, as text.
    pub async fn page_text(&self) -> Result<String> {
        match self.find_by("css selector", "body").await? {
            Some(body) => self.text(&body).await,
            None => Ok(String::new()),
        }
    }

    /// The element that has keyboard focus.
    pub async fn active_element(&self) -> Result<Element> {
        let v = self.cmd(Method::GET, "/element/active", None).await?;
        element_of(&v)
    }

    /// Press and release one key on the keyboard (e.g. [`TAB`]).
    pub async fn press_key(&self, key: &str) -> Result<()> {
        let actions = json!({ "actions": [{
            "type": "key",
            "id": "keyboard",
            "actions": [{ "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }],
        }]});
        self.cmd(Method::POST, "/actions", Some(actions)).await?;
        self.cmd(Method::DELETE, "/actions", None).await.map(|_| ())
    }

    /// Move the mouse over `el`, `dx` CSS pixels right of its centre (negative: left).
    pub async fn hover(&self, el: &Element, dx: i64) -> Result<()> {
        let origin = json!({ ELEMENT_KEY: el.0 });
        let actions = json!({ "actions": [{
            "type": "pointer",
            "id": "mouse",
            "parameters": { "pointerType": "mouse" },
            "actions": [{ "type": "pointerMove", "duration": 0, "origin": origin, "x": dx, "y": 0 }],
        }]});
        self.cmd(Method::POST, "/actions", Some(actions)).await.map(|_| ())
    }

    /// Run `script` in the page as the body of a function (its arguments are `args`, as
    /// `arguments[0]`...) and return what it returns. For what a person does that WebDriver has
    /// no command for, such as dropping a file from the desktop. (Not every browser test uses it.)
    #[allow(dead_code)]
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    /// Save a PNG of the viewport.
    pub async fn screenshot(&self, to: &Path) -> Result<()> {
        let v = self.cmd(Method::GET, "/screenshot", None).await?;
        let b64 = v.as_str().ok_or_else(|| format!("screenshot is not a string: {v}"))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        std::fs::write(to, png).map_err(|e| format!("cannot write {}: {e}", to.display()))
    }
}

/// One WebDriver command; an error answer becomes `Err("<error>: <first line of message>")`.
pub async fn send(http: &reqwest::Client, method: Method, url: &str, body: Option<Value>) -> Result<Value> {
    let what = format!("{method} {url}");
    let mut req = http.request(method.clone(), url);
    match body {
        Some(b) => req = req.json(&b),
        None if method == Method::POST => req = req.json(&json!({})),
        None => {}
    }
    let res = req.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = res.status();
    let mut v: Value = res.json().await.map_err(|e| format!("{what}: answer is not JSON ({status}): {e}"))?;
    if !status.is_success() {
        let error = v["value"]["error"].as_str().unwrap_or("error");
        let message = v["value"]["message"].as_str().unwrap_or_default().lines().next().unwrap_or_default();
        return Err(format!("{what}: {error}: {message}"));
    }
    Ok(v["value"].take())
}

fn element_of(v: &Value) -> Result<Element> {
    v[ELEMENT_KEY]
        .as_str()
        .map(|id| Element(id.to_string()))
        .ok_or_else(|| format!("not an element reference: {v}"))
}

/// `http://host:port/a/b?c` → `/a/b`.
pub fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    path.split(['?', '#']).next().unwrap_or("/").to_string()
}

/// A string as an XPath literal (labels here never hold both quote kinds).
fn xpath_literal(s: &str) -> String {
    if s.contains('\'') { format!("\"{s}\"") } else { format!("'{s}'") }
}
