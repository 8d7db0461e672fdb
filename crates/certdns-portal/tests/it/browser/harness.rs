//! Driving headless Chromium for the portal's browser tests: chromedriver,
//! sessions, and [`shot`], the check every page goes through at a desktop size
//! (1280×900) and a phone size (390×844) — no horizontal overflow, no action
//! outside the window, no accessibility violation of serious or critical impact
//! (axe-core) — with its screenshot in docs/screenshots/.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use crate::support::*;
use fantoccini::{Client, ClientBuilder, Locator};

pub(super) const HOW_TO_INSTALL: &str = "install Debian's chromium and chromium-driver \
    (`apt-get install chromium chromium-driver`, or run scripts/test-services.sh), \
    or set CERTDNS_TEST_CHROMEDRIVER / CERTDNS_TEST_CHROMIUM to their paths";

pub(super) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn find_binary(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists()).or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).flat_map(|dir| candidates.iter().map(move |c| dir.join(c))).find(|p| p.is_file())
    })
}

pub(super) async fn start_driver() -> Driver {
    let driver = find_binary("CERTDNS_TEST_CHROMEDRIVER", &["/usr/bin/chromedriver", "chromedriver"])
        .unwrap_or_else(|| panic!("chromedriver not found: {HOW_TO_INSTALL}"));
    let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let spawned =
        Command::new(&driver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    // Owned by the guard from here on, so it is killed and reaped on every path.
    let started = Driver {
        child: spawned.unwrap_or_else(|e| panic!("cannot start {} ({e}): {HOW_TO_INSTALL}", driver.display())),
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return started;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {}: {HOW_TO_INSTALL}", started.url);
}

pub(super) async fn browser(driver: &Driver) -> Client {
    browser_with(driver, &[]).await
}

/// A Chromium session with `extra` command-line switches.
pub(super) async fn browser_with(driver: &Driver, extra: &[&str]) -> Client {
    let chromium = find_binary("CERTDNS_TEST_CHROMIUM", &["/usr/bin/chromium", "chromium"])
        .unwrap_or_else(|| panic!("chromium not found: {HOW_TO_INSTALL}"));
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        "--force-device-scale-factor=1",
    ];
    args.extend_from_slice(extra);
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": chromium, "args": args }));
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session through chromedriver ({e}): {HOW_TO_INSTALL}"));
    client.set_window_size(1280, 900).await.unwrap();
    client
}

pub(super) fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks the page at a desktop size and a phone size — no horizontal overflow,
/// no button or link-button out of the window, no serious or critical
/// accessibility violation — and writes a screenshot at each
/// (`<name>.png`, `<name>-phone.png`).
pub(super) async fn shot(c: &Client, name: &str) {
    shot_at(c, name, None).await;
}

/// [`shot`] with the view at `focus` at each size: `"top"` for the top of the
/// page, else a CSS selector scrolled to the middle of the window.
pub(super) async fn shot_at(c: &Client, name: &str, focus: Option<&str>) {
    for (width, height, suffix) in [(1280, 900, ""), (390, 844, "-phone")] {
        c.set_window_size(width, height).await.unwrap();
        match focus {
            None => {}
            Some("top") => drop(c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap()),
            Some(css) => {
                let script = "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})";
                c.execute(script, vec![serde_json::json!(css)]).await.unwrap();
            }
        }
        let found = c.execute(LAYOUT_CHECK, vec![]).await.unwrap();
        let problems: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(problems.is_empty(), "{name} at {width}x{height}: {problems:#?}");
        let violations = accessibility_violations(c).await;
        assert!(violations.is_empty(), "{name} at {width}x{height}, axe-core: {violations:#?}");
        let png = c.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
        // Written when missing or when asked: every run has new ids and times, and
        // rewriting the committed pictures each time would only make noise.
        let file = screenshots_dir().join(format!("{name}{suffix}.png"));
        if !file.exists() || std::env::var_os(UPDATE_SCREENSHOTS).is_some() {
            std::fs::write(file, png).unwrap();
        }
    }
    c.set_window_size(1280, 900).await.unwrap();
}

/// Set, the screenshots in `docs/screenshots/` are rewritten (after a page changed).
pub(super) const UPDATE_SCREENSHOTS: &str = "CERTDNS_UPDATE_SCREENSHOTS";

/// What a user would see as broken layout: the page wider than the window, a
/// table wider than its card (it would scroll sideways inside it), or an action
/// (button, link styled as one, input) beyond its left or right edge.
pub(super) const LAYOUT_CHECK: &str = r#"
const width = document.documentElement.clientWidth;
const problems = [];
if (document.documentElement.scrollWidth > width) {
  // Name the text that sticks out (visible text only), so the fix is findable.
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode() && out.length < 3) {
    const range = document.createRange();
    range.selectNodeContents(walker.currentNode);
    const r = range.getBoundingClientRect();
    if (r.right > width + 1 && walker.currentNode.parentElement.closest('thead') === null) {
      out.push(`"${walker.currentNode.textContent.trim().slice(0, 30)}" in ${walker.currentNode.parentElement.tagName.toLowerCase()}`);
    }
  }
  problems.push(`page is ${document.documentElement.scrollWidth}px wide in a ${width}px window: ${out.join(', ')}`);
}
for (const wrap of document.querySelectorAll('main .table-wrap')) {
  if (wrap.scrollWidth > wrap.clientWidth + 1) {
    problems.push(`a table is ${wrap.scrollWidth}px wide in its ${wrap.clientWidth}px card`);
  }
}
for (const el of document.querySelectorAll('main button, main a.button, main input:not([type=hidden]), main select, header a, header button')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.left < -1 || r.right > width + 1) {
    problems.push(`${el.tagName.toLowerCase()} "${(el.textContent || el.value || el.id).trim().slice(0, 30)}" spans ${Math.round(r.left)}..${Math.round(r.right)}px`);
  }
}
return problems;
"#;

pub(super) async fn fill(c: &Client, css: &str, text: &str) {
    let el = c.find(Locator::Css(css)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

/// Waits (10 s at most) for an element matching `xpath`; `what` names it if it never comes.
pub(super) async fn wait_xpath(c: &Client, xpath: &str, what: &str) {
    if let Err(e) = c.wait().at_most(Duration::from_secs(10)).for_element(Locator::XPath(xpath)).await {
        panic!("{what}: {e}");
    }
}

pub(super) async fn wait_css(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await.unwrap_or_else(|e| {
        panic!("{css} did not appear: {e}");
    })
}

/// Opens the newest confirmation link of the outbox, as the user would from the mail.
pub(super) async fn confirm_by_mail(env: &Env, c: &Client) {
    let link = link_in(&env.outbox(), "/verify-email?token=");
    c.goto(&format!("{}{link}", env.portal)).await.unwrap();
}

/// axe-core's browser build, from the npm registry: `npm ci` in
/// crates/certdns-portal/tests/browser (the lockfile pins the version;
/// scripts/test-services.sh runs it).
static AXE: LazyLock<String> = LazyLock::new(|| {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "axe-core not installed ({}: {e}): run scripts/test-services.sh, or `npm ci` in crates/certdns-portal/tests/browser",
            file.display()
        )
    })
});

/// Runs axe-core on the page as it is now (the WCAG 2.x A and AA rules and
/// axe's best practices); the violations of serious or critical impact, each
/// as "rule: help (the elements)".
pub(super) async fn accessibility_violations(c: &Client) -> Vec<String> {
    c.execute(&format!("{};return typeof axe;", AXE.as_str()), vec![]).await.unwrap();
    let run = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] }).then(
  (r) => done(r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) =>
    `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join(', ')}`)),
  (e) => done([`axe failed: ${e}`]));
"#;
    let found = c.execute_async(run, vec![]).await.unwrap();
    serde_json::from_value(found).unwrap()
}
