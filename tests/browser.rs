//! The first day of a school's reelbox, in a real browser (Chromium through chromedriver):
//! first-run setup, the administrator creates an account, a group, a category and a grant; the
//! pupil signs in, first sees "no access yet", then sees the category.
//!
//! Everything goes through the pages, the way a person would use them: typing into labelled
//! fields, clicking buttons and links. Screenshots of the key steps (and of both browsers when a
//! step fails) are saved and their paths printed.
//!
//! Needs Debian's `chromium` and `chromium-driver`; honours REELBOX_CHROMEDRIVER and
//! REELBOX_CHROMIUM. Without them the test fails and says how to install them.

// Each browser test uses part of the shared support (this one: Chromium only, no hovering).
#[allow(dead_code)]
mod browser_support;

use std::path::PathBuf;
use std::time::Instant;

use browser_support::webdriver::{Browser, Result, TAB};
use browser_support::{BrowserKind, Driver, Server, artifacts_dir};

const ADMIN_USERNAME: &str = "ict.admin";
const ADMIN_NAME: &str = "Alex Admin";
const ADMIN_PASSWORD: &str = "lantern orchard velvet 82";
const PUPIL_USERNAME: &str = "pat.pupil";
const PUPIL_NAME: &str = "Pat Pupil";
const PUPIL_PASSWORD: &str = "harbour kettle meadow 37";
const GROUP_NAME: &str = "Year 7 Science";
const CATEGORY_NAME: &str = "Cells and Microscopes";
const NO_ACCESS_YET: &str = "You are signed in, but you have not been given access yet";

/// Saves screenshots into one directory and prints where they are.
struct Shots {
    dir: PathBuf,
    taken: Vec<PathBuf>,
}

impl Shots {
    async fn take(&mut self, browser: &Browser, step: &str) -> Result<()> {
        let path = self.dir.join(format!("{:02}-{}-{step}.png", self.taken.len() + 1, browser.name));
        browser.screenshot(&path).await?;
        println!("screenshot: {}", path.display());
        self.taken.push(path);
        Ok(())
    }
}

#[tokio::test]
async fn first_run_setup_then_a_grant_lets_a_pupil_see_a_category() {
    let started = Instant::now();
    let chromedriver = BrowserKind::Chromium.require_driver();
    let chromium = BrowserKind::Chromium.require_browser();
    let dir = artifacts_dir();
    println!("screenshots and logs: {}", dir.display());

    let server = Server::start(&dir.join("reelbox.log")).expect("start reelbox serve");
    let driver = Driver::start(BrowserKind::Chromium, &chromedriver, &dir.join("chromedriver.log"))
        .await
        .expect("start chromedriver");
    let admin = Browser::start(BrowserKind::Chromium, &driver.url, &chromium, "admin", &server.base)
        .await
        .expect("start the admin's browser");
    let pupil = Browser::start(BrowserKind::Chromium, &driver.url, &chromium, "pupil", &server.base)
        .await
        .expect("start the pupil's browser");

    let mut shots = Shots { dir: dir.clone(), taken: Vec::new() };
    let mut problems = Vec::new();
    let outcome = first_day(&server, &admin, &pupil, &mut shots, &mut problems).await;
    if outcome.is_err() {
        for browser in [&admin, &pupil] {
            let url = browser.current_url().await.unwrap_or_else(|e| format!("(unknown: {e})"));
            println!("[{} browser] was on {url}", browser.name);
            if let Err(e) = shots.take(browser, "failure").await {
                println!("[{} browser] no failure screenshot: {e}", browser.name);
            }
        }
    }
    for browser in [admin, pupil] {
        let name = browser.name;
        if let Err(e) = browser.quit().await {
            println!("[{name} browser] did not close cleanly: {e}");
        }
    }
    drop(driver);
    drop(server);
    println!(
        "browser test took {:.1} s; {} screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.taken.len(),
        dir.display()
    );
    if let Err(e) = outcome {
        problems.push(e);
    }
    if !problems.is_empty() {
        panic!(
            "{}\n(screenshots, reelbox.log and chromedriver.log are in {})",
            problems.join("\n\n"),
            dir.display()
        );
    }
}

/// Walks the scenario; a hard failure stops it (`Err`), a softer one (an accessibility check) is
/// pushed to `problems` and the scenario goes on, so one run reports everything it can.
async fn first_day(
    server: &Server,
    admin: &Browser,
    pupil: &Browser,
    shots: &mut Shots,
    problems: &mut Vec<String>,
) -> Result<()> {
    // 1. First-run setup with the link the server printed; it signs the administrator in.
    admin.goto(&server.setup_url).await?;
    expect_text(admin, "Welcome to reelbox").await?;
    admin.fill("#username", ADMIN_USERNAME).await?;
    admin.fill("#display_name", ADMIN_NAME).await?;
    admin.fill("#password", ADMIN_PASSWORD).await?;
    admin.fill("#password_confirm", ADMIN_PASSWORD).await?;
    admin.click_button("Create administrator").await?;
    admin.wait_for_path("/admin", |p| p == "/admin").await?;
    expect_text(admin, "Administration").await?;
    expect_text(admin, &format!("Signed in as {ADMIN_NAME}")).await?;
    shots.take(admin, "setup-done").await?;

    // 2. An account for the pupil, with a password they may keep.
    admin.click_link(ADMIN_NAV, "People").await?;
    admin.wait_for_path("/admin/users", |p| p == "/admin/users").await?;
    admin.fill("#new-username", PUPIL_USERNAME).await?;
    admin.fill("#new-display-name", PUPIL_NAME).await?;
    admin.fill("#new-password", PUPIL_PASSWORD).await?;
    let must_change = admin.find("#new-must-change").await?;
    if !admin.is_selected(&must_change).await? {
        return Err("“must change password” should be ticked by default for a new account".into());
    }
    admin.click(&must_change).await?;
    if admin.is_selected(&must_change).await? {
        return Err("clicking #new-must-change did not untick it".into());
    }
    admin.click_button("Create account").await?;
    admin.wait_for_path("/admin/users/{id}", |p| id_after(p, "/admin/users/").is_some()).await?;
    expect_text(admin, PUPIL_USERNAME).await?;
    shots.take(admin, "account-created").await?;

    // 3. A group with the pupil in it.
    admin.click_link(ADMIN_NAV, "Groups").await?;
    admin.wait_for_path("/admin/groups", |p| p == "/admin/groups").await?;
    admin.fill("#group-name", GROUP_NAME).await?;
    admin.click_button("Create group").await?;
    let group_page =
        admin.wait_for_path("/admin/groups/{id}", |p| id_after(p, "/admin/groups/").is_some()).await?;
    expect_text(admin, GROUP_NAME).await?;
    admin.fill("#member-username", PUPIL_USERNAME).await?;
    admin.click_button("Add member").await?;
    admin.wait_for_path(&group_page, |p| p == group_page).await?;
    expect_text(admin, PUPIL_NAME).await?;
    shots.take(admin, "group-with-member").await?;

    // 4. A category, which nobody but administrators can see yet.
    admin.click_link(ADMIN_NAV, "Categories").await?;
    admin.wait_for_path("/admin/categories", |p| p == "/admin/categories").await?;
    admin.fill("#category-name", CATEGORY_NAME).await?;
    admin.click_button("Create category").await?;
    let category_admin_page = admin
        .wait_for_path("/admin/categories/{id}", |p| id_after(p, "/admin/categories/").is_some())
        .await?;
    let category_id = id_after(&category_admin_page, "/admin/categories/").ok_or("no category id")?;
    expect_text(admin, CATEGORY_NAME).await?;
    shots.take(admin, "category-created").await?;

    // 5. The pupil, in a browser of their own: the library sends them to sign in. The first Tab
    //    on that page must reach the skip link (checked, but the scenario goes on either way).
    pupil.goto("/").await?;
    pupil.wait_for_path("/login", |p| p == "/login").await?;
    pupil.find("#username").await?;
    pupil.press_key(TAB).await?;
    let skip_link = first_tab_reaches_skip_link(pupil).await?;
    shots.take(pupil, "sign-in-after-first-tab").await?;
    if let Err(problem) = skip_link {
        problems.push(problem);
    }
    pupil.fill("#username", PUPIL_USERNAME).await?;
    pupil.fill("#password", PUPIL_PASSWORD).await?;
    pupil.click_button("Sign in").await?;
    pupil.wait_for_path("/", |p| p == "/").await?;
    expect_text(pupil, NO_ACCESS_YET).await?;
    let text = pupil.page_text().await?;
    if text.contains(CATEGORY_NAME) {
        return Err(format!(
            "before any grant the pupil must not see “{CATEGORY_NAME}”; the page says:\n{text}"
        ));
    }
    shots.take(pupil, "no-access-yet").await?;

    // 6. The administrator grants the group "view" from the category's access page.
    admin.click_link(MAIN_NAV, "Library").await?;
    admin.wait_for_path("/", |p| p == "/").await?;
    admin.click_link(MAIN, CATEGORY_NAME).await?;
    let category_page = format!("/categories/{category_id}");
    admin.wait_for_path(&category_page, |p| p == category_page).await?;
    admin.click_link(MAIN, "Manage access").await?;
    let access_page = format!("/categories/{category_id}/access");
    admin.wait_for_path(&access_page, |p| p == access_page).await?;
    let group_select = admin.find("select#group_id").await?;
    admin.click(&group_select).await?;
    let option = admin
        .find_xpath(&format!("//select[@id='group_id']/option[normalize-space()='{GROUP_NAME}']"))
        .await?;
    admin.click(&option).await?;
    if !admin.is_selected(&option).await? {
        return Err(format!("could not choose “{GROUP_NAME}” in the group list"));
    }
    let view_role = admin.find("#role-view").await?;
    if !admin.is_selected(&view_role).await? {
        return Err("the “view” role should be chosen by default".into());
    }
    admin.click_button("Grant").await?;
    admin.wait_for_path(&access_page, |p| p == access_page).await?;
    let reasons = admin.find_xpath("//section[h2[normalize-space()='Why people can see it']]").await?;
    let reasons_text = admin.text(&reasons).await?;
    if !reasons_text.contains(GROUP_NAME) {
        return Err(format!(
            "after the grant, “Why people can see it” should list {GROUP_NAME}; it says:\n{reasons_text}"
        ));
    }
    shots.take(admin, "access-granted").await?;

    // 7. The pupil reloads the library, sees the category and opens it.
    pupil.refresh().await?;
    let link = pupil.find_xpath(&format!("{MAIN}//a[normalize-space()='{CATEGORY_NAME}']")).await?;
    shots.take(pupil, "category-listed").await?;
    pupil.click_to_new_page(&link).await?;
    pupil.wait_for_path(&category_page, |p| p == category_page).await?;
    let heading = pupil.find("main h1").await?;
    let heading_text = pupil.text(&heading).await?;
    if heading_text.trim() != CATEGORY_NAME {
        return Err(format!("the category page's heading should be “{CATEGORY_NAME}”, not “{heading_text}”"));
    }
    if pupil.try_find_xpath(&format!("{MAIN}//a[normalize-space()='Manage access']")).await?.is_some() {
        return Err("a pupil with the view role must not be offered “Manage access”".into());
    }
    shots.take(pupil, "category-open").await?;
    Ok(())
}

const MAIN: &str = "//main";
const MAIN_NAV: &str = "//nav[@aria-label='Main']";
const ADMIN_NAV: &str = "//nav[@aria-label='Administration']";

/// After one Tab from a fresh page: is the skip link focused, pointing at the main content and
/// visible? `Ok(Err(..))` says what is wrong instead.
async fn first_tab_reaches_skip_link(browser: &Browser) -> Result<std::result::Result<(), String>> {
    let focused = browser.active_element().await?;
    let text = browser.text(&focused).await?;
    let href = browser.attr(&focused, "href").await?.unwrap_or_default();
    if text.trim() != "Skip to content" || !href.ends_with("#main") {
        let html = browser.prop(&focused, "outerHTML").await?.unwrap_or_default();
        return Ok(Err(format!(
            "keyboard: on the sign-in page the first Tab should focus the “Skip to content” link, \
             but focus went to {}",
            html.chars().take(160).collect::<String>()
        )));
    }
    let (_, y, width, height) = browser.rect(&focused).await?;
    if y < 0.0 || width < 1.0 || height < 1.0 {
        return Ok(Err(format!(
            "keyboard: the focused “Skip to content” link is not on screen (y {y}, {width}×{height})"
        )));
    }
    Ok(Ok(()))
}

/// Fail unless the page shows `text` somewhere.
async fn expect_text(browser: &Browser, text: &str) -> Result<()> {
    let page = browser.page_text().await?;
    if page.contains(text) {
        Ok(())
    } else {
        Err(format!(
            "[{} browser] expected the page at {} to show “{text}”; it says:\n{page}",
            browser.name,
            browser.current_url().await.unwrap_or_default()
        ))
    }
}

/// `/admin/users/7` with prefix `/admin/users/` → 7.
fn id_after(path: &str, prefix: &str) -> Option<i64> {
    path.strip_prefix(prefix)?.parse().ok()
}
