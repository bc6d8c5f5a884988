//! The web dashboard in a real headless browser: Debian's `chromium`, driven over WebDriver by
//! `chromedriver` (the `chromium-driver` package, which `.ci/setup` installs). One walk through
//! every page signs in as a tenant's approver, watches a campaign end without a reload, finds its
//! data points in the charts, follows a decision down to its outcomes, approves a request in the
//! browser and sees it approved in the API, fails to open another tenant's campaign, signs out,
//! and signs in again as an operator for the orders and agents pages; a second test revives an
//! isolated agent from the agents page. No page may log a console error or warning (the
//! stylesheet and the script run under the pages' Content-Security-Policy, so a violation would
//! show here), be wider than the window (a phone's too) or weigh 1 MB. Each page's screenshot is
//! saved under `target/dashboard/`.
//!
//! Beside them, plain HTTP checks the forms' CSRF protection (a form without the session's token
//! changes nothing) and the paging with a thousand campaigns (no page reaches 1 MB).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::approvals::{
    GLOBEX, OPERATOR, approvals, call, client, deployment, id_of, next_pending, start_at,
};
use crate::support::{
    Process, kr_goal_toml, manifest_dir, us_goal_toml, wait_for, wait_for_async, write,
};

/// How long a page or an element may take to appear.
const PAGE: Duration = Duration::from_secs(20);

/// The deployment of the walk: `globex_fall` (autonomous, 60 days), `globex_hold` (manual, so
/// its first day's buys wait for a person) and acme's `acme_spring`, which globex must not see.
fn dashboard_deployment(base: &Path) {
    deployment(base, "autonomy = \"autonomous\"", "");
    write(
        base,
        "config/campaigns/globex_fall.toml",
        &format!(
            "autonomy = \"autonomous\"\n{}",
            us_goal_toml("globex_fall", 1_200, 60)
        ),
    );
    write(
        base,
        "config/campaigns/globex_hold.toml",
        &format!(
            "autonomy = \"manual\"\n{}",
            us_goal_toml("globex_hold", 100_000, 60)
        ),
    );
    write(
        base,
        "config/campaigns/acme_spring.toml",
        &kr_goal_toml("acme_spring", 100_000, 60),
    );
}

/// `chromedriver` on a free loopback port. Dropping the guard kills it, and the browser it
/// started ends with it (the browser is driven over a pipe that closes), so a failing test leaves
/// nothing behind.
struct Driver {
    _process: Process,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        for program in ["chromedriver", "chromium"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "`{program}` is not installed: the dashboard's browser tests need Debian's \
                 `chromium` and `chromium-driver` (apt-get install chromium chromium-driver; \
                 .ci/run does this)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut command = Command::new("chromedriver");
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1");
        let process = Process::spawn(&mut command, None);
        let status = format!("http://127.0.0.1:{port}/status");
        wait_for("chromedriver to listen", PAGE, || {
            let mut answer = client().get(&status).call().ok()?;
            let body: Value =
                serde_json::from_str(&answer.body_mut().read_to_string().ok()?).ok()?;
            body["value"]["ready"].as_bool()?.then_some(())
        });
        Driver {
            _process: process,
            port,
        }
    }

    /// A new headless browser session; its profile lives in `profile`.
    async fn browser(&self, profile: &Path) -> Browser {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-extensions", "--window-size=1280,1600",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session through chromedriver");
        let session = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session id");
        Browser {
            client,
            logs: format!("http://127.0.0.1:{}/session/{session}/se/log", self.port),
        }
    }
}

/// A browser session and where its console log is read.
struct Browser {
    client: Client,
    logs: String,
}

impl Browser {
    /// Opens `path` on the daemon at `addr` and waits until `ready` (a CSS selector) is on it.
    async fn open(&self, addr: SocketAddr, path: &str, ready: &str) {
        self.client
            .goto(&format!("http://{addr}{path}"))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        self.element(ready).await;
    }

    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(PAGE)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!("`{css}` on {}: {e}", self.url().await),
        }
    }

    async fn all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("`{css}`: {e}"))
    }

    async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap_or_default()
    }

    async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.element(css).await.attr(name).await.ok().flatten()
    }

    async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }

    async fn script(&self, body: &str) -> Value {
        self.client
            .execute(body, vec![])
            .await
            .unwrap_or_else(|e| panic!("script `{body}`: {e}"))
    }

    /// The console entries logged since the last call (chromedriver hands each out once).
    fn console(&self) -> Vec<Value> {
        let mut answer = client()
            .post(&self.logs)
            .header("Content-Type", "application/json")
            .send(json!({"type": "browser"}).to_string())
            .expect("the browser's console log");
        let body: Value =
            serde_json::from_str(&answer.body_mut().read_to_string().unwrap_or_default())
                .unwrap_or(Value::Null);
        body["value"].as_array().cloned().unwrap_or_default()
    }

    /// Fails if the console holds an error or a warning since the last look.
    fn assert_clean_console(&self, page: &str) {
        let bad: Vec<Value> = self
            .console()
            .into_iter()
            .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
            .collect();
        assert!(bad.is_empty(), "console errors on {page}: {bad:?}");
    }

    /// Saves the page as `target/dashboard/<name>.png` and checks it fits its width and the
    /// document is under 1 MB; fails on a console error.
    async fn check_page(&self, name: &str) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot of {name}: {e}"));
        let folder = screenshots();
        std::fs::create_dir_all(&folder).expect("target/dashboard");
        std::fs::write(folder.join(format!("{name}.png")), png).expect("save the screenshot");
        let size = self
            .script("return document.documentElement.outerHTML.length;")
            .await;
        assert!(
            size.as_u64().is_some_and(|n| n < 1_000_000),
            "{name} is {size} characters"
        );
        let fits = self
            .script("return document.documentElement.scrollWidth <= window.innerWidth;")
            .await;
        assert_eq!(fits, json!(true), "{name} is wider than the window");
        self.assert_clean_console(name);
    }

    async fn sign_in(&self, addr: SocketAddr, token: &str) {
        self.open(addr, "/login", "#token").await;
        self.element("#token")
            .await
            .send_keys(token)
            .await
            .expect("type the token");
        self.element("#sign-in")
            .await
            .click()
            .await
            .expect("sign in");
        self.element("table.campaigns").await;
    }
}

fn screenshots() -> PathBuf {
    manifest_dir().join("target/dashboard")
}

fn decimal(text: Option<String>) -> f64 {
    text.and_then(|t| t.parse().ok()).unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_in_a_real_browser_for_a_tenant_and_an_operator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    dashboard_deployment(base);
    let driver = Driver::start();
    // A campaign day every 0.5 s: globex_fall ends about 30 s in, while the campaigns page is open.
    let (_daemon, addr) = start_at(base, 172_800);
    let browser = driver.browser(&base.join("profile")).await;

    // Signed out, every page leads to the sign-in form.
    browser.open(addr, "/", "#token").await;
    assert_eq!(browser.path().await, "/login");
    browser.check_page("login").await;

    // Campaigns: globex's two, not acme's; the page follows the campaign to its end by itself.
    browser.sign_in(addr, GLOBEX).await;
    assert_eq!(browser.path().await, "/");
    let rows = browser.all("table.campaigns tbody tr").await;
    let mut shown = Vec::new();
    for row in rows {
        shown.push(
            row.attr("data-campaign")
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
        );
    }
    shown.sort();
    assert_eq!(shown, ["globex_fall", "globex_hold"]);
    browser
        .script("window.notReloaded = true; return null;")
        .await;
    // It ends at its deadline, or earlier when the simulated market lets it reach its target.
    wait_for_async_text(
        &browser,
        "tr[data-campaign=globex_fall] span.state",
        &["ended", "achieved"],
    )
    .await;
    assert_eq!(
        browser.script("return window.notReloaded === true;").await,
        json!(true),
        "the page was reloaded instead of updated in place"
    );
    let waiting = browser
        .text("tr[data-campaign=globex_hold] td:last-child")
        .await;
    assert!(waiting.contains("pending"), "{waiting}");
    browser.check_page("campaigns").await;

    // A campaign: the charts hold its data, and the last conversions point is the API's count.
    browser
        .open(addr, "/campaigns/globex_fall", "#conversions circle.point")
        .await;
    let (status, api) = call(addr, "GET", "/v1/campaigns/globex_fall", GLOBEX, None);
    assert_eq!(status, 200, "{api}");
    let points = browser
        .all("#conversions circle.point[data-series=conversions]")
        .await;
    assert!(points.len() >= 30, "{} conversion points", points.len());
    let last = points
        .last()
        .expect("a point")
        .attr("data-y")
        .await
        .ok()
        .flatten();
    assert_eq!(
        decimal(last),
        api["conversions"].as_f64().expect("conversions"),
        "the chart's last point against the API"
    );
    assert!(!browser.all("#spend circle.point").await.is_empty());
    assert!(!browser.all("#mix [data-kind=actual]").await.is_empty());
    assert!(!browser.all("#mix [data-kind=planned]").await.is_empty());
    assert!(
        !browser
            .all("table.leaderboard svg.interval")
            .await
            .is_empty()
    );
    let low = decimal(
        browser
            .attr("table.leaderboard svg.interval", "data-low")
            .await,
    );
    let high = decimal(
        browser
            .attr("table.leaderboard svg.interval", "data-high")
            .await,
    );
    assert!(
        0.0 <= low && low <= high && high <= 1.0,
        "interval {low}..{high}"
    );
    browser.check_page("campaign").await;

    // Decisions: the timeline filtered by kind, and one experiment's trace down to its outcomes.
    browser
        .open(
            addr,
            "/decisions?campaign=globex_fall&kind=experiment",
            "ol.timeline li",
        )
        .await;
    for entry in browser.all("ol.timeline li").await {
        assert_eq!(
            entry.attr("data-kind").await.ok().flatten().as_deref(),
            Some("experiment")
        );
    }
    browser.check_page("decisions").await;
    browser
        .element("ol.timeline li p.reason a")
        .await
        .click()
        .await
        .expect("open a trace");
    browser.element("ol.outcomes li").await;
    assert!(browser.path().await.starts_with("/decisions/"));
    browser.check_page("trace").await;

    // Approvals: approve globex_hold's waiting buys in the browser; the API says approved.
    let request = wait_for("globex_hold's waiting buys", PAGE, || {
        approvals(addr, GLOBEX, "state=pending&kind=buys&campaign=globex_hold")
            .into_iter()
            .next()
    });
    let id = id_of(&request);
    browser
        .open(addr, "/approvals", &format!("#approval-{id}"))
        .await;
    browser.check_page("approvals").await;
    let form = format!("#approval-{id} form");
    browser
        .element(&format!("{form} input[name=reason]"))
        .await
        .send_keys("the day's buys look right")
        .await
        .expect("type a reason");
    browser
        .element(&format!("{form} button[value=approve]"))
        .await
        .click()
        .await
        .expect("approve");
    browser.element("p.notice").await;
    let (status, answered) = call(addr, "GET", &format!("/v1/approvals/{id}"), GLOBEX, None);
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["state"], "approved", "{answered}");
    assert_eq!(answered["answer"]["why"], "the day's buys look right");

    // Another tenant's campaign is not there for globex, by the API's own error.
    browser
        .open(addr, "/campaigns/acme_spring", "p.error")
        .await;
    assert_eq!(
        browser.attr("p.error", "data-code").await.as_deref(),
        Some("unknown_campaign")
    );
    assert!(!browser.text("main").await.contains("acme/kr_retail"));
    // The 404 itself is logged by the browser; nothing else may be.
    let logged: Vec<Value> = browser
        .console()
        .into_iter()
        .filter(|e| !e["message"].as_str().unwrap_or_default().contains("404"))
        .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
        .collect();
    assert!(logged.is_empty(), "{logged:?}");

    // Signing out ends the session: the campaigns page is behind the sign-in form again.
    browser.open(addr, "/", "#sign-out").await;
    browser
        .element("#sign-out")
        .await
        .click()
        .await
        .expect("sign out");
    browser.element("#token").await;
    browser.open(addr, "/", "#token").await;
    assert_eq!(browser.path().await, "/login");

    // An operator sees every tenant, the orders with their connectors, and the agents.
    browser.sign_in(addr, OPERATOR).await;
    assert_eq!(browser.all("table.campaigns tbody tr").await.len(), 3);
    browser
        .open(addr, "/orders?campaign=globex_fall", "ul.connectors li")
        .await;
    assert!(
        !browser
            .all("table.orders tr[data-state=delivered]")
            .await
            .is_empty()
    );
    browser.check_page("orders").await;
    browser.open(addr, "/agents", "table.agents").await;
    for agent in [
        "orchestrator",
        "strategy",
        "content",
        "compliance",
        "optimization",
    ] {
        let state = browser
            .attr(&format!("tr[data-agent={agent}]"), "data-state")
            .await;
        assert_eq!(state.as_deref(), Some("running"), "{agent}");
    }
    browser.check_page("agents").await;

    // On a phone's width the campaign page still fits.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("a phone-sized window");
    browser
        .open(addr, "/campaigns/globex_fall", "#conversions")
        .await;
    browser.check_page("campaign-phone").await;

    browser
        .client
        .close()
        .await
        .expect("end the browser session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_revives_an_isolated_agent_from_the_agents_page() {
    // With the orchestrator, which records who revived the agent and why.
    let run = crate::api::start_with(crate::api::With {
        flaky: true,
        orchestrator: true,
        ..Default::default()
    })
    .await;
    crate::api::isolate_flaky(&run).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("tempdir");
    let browser = driver.browser(profile.path()).await;
    browser.sign_in(run.addr, crate::api::OPERATOR).await;
    browser
        .open(
            run.addr,
            "/agents",
            "tr[data-agent=flaky][data-state=isolated] form",
        )
        .await;
    browser.check_page("agents-isolated").await;
    let form = "tr[data-agent=flaky] form";
    browser
        .element(&format!("{form} input[name=reason]"))
        .await
        .send_keys("the failing dependency is back")
        .await
        .expect("type a reason");
    browser
        .element(&format!("{form} button"))
        .await
        .click()
        .await
        .expect("revive");
    let notice = browser.element("p.notice").await;
    let (class, text) = (notice.attr("class").await, notice.text().await);
    assert!(
        class
            .as_ref()
            .is_ok_and(|c| c.as_deref().is_some_and(|c| c.contains("ok"))),
        "{class:?}: {text:?}"
    );
    let state = browser.attr("tr[data-agent=flaky]", "data-state").await;
    assert_eq!(state.as_deref(), Some("running"));
    let status = run
        .daemon
        .runtime()
        .agent_status("flaky")
        .expect("flaky is configured");
    assert_eq!(status.state, campaignd::runtime::AgentState::Running);
    browser.assert_clean_console("agents after a revive");
    browser
        .client
        .close()
        .await
        .expect("end the browser session");
    run.daemon.shutdown().await.expect("shutdown");
}

/// Waits, without reloading, until the element at `css` reads one of `wanted`.
async fn wait_for_async_text(browser: &Browser, css: &str, wanted: &[&str]) {
    wait_for_async(
        &format!("`{css}` to read {wanted:?}"),
        Duration::from_secs(90),
        || async {
            let now = browser
                .client
                .find(Locator::Css(css))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            wanted.contains(&now.as_str()).then_some(())
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// CSRF, over plain HTTP.

/// A client that does not follow redirects, so a test sees the 303 and its cookies.
fn no_redirects() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// The value of the first `name="csrf"` field in `html`.
fn csrf_field(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap_or_default().to_owned()
}

/// The `name=value` of the cookie `name` that `response` sets.
fn set_cookie(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Signs in over HTTP as `token`: the session cookie, as a `Cookie` header value.
fn http_sign_in(addr: SocketAddr, token: &str) -> String {
    let agent = no_redirects();
    let mut form = agent
        .get(&format!("http://{addr}/login"))
        .call()
        .expect("GET /login");
    let sign_in = set_cookie(&form, "campaignd_sign_in").expect("a sign-in cookie");
    let csrf = csrf_field(&form.body_mut().read_to_string().expect("the form"));
    let signed = agent
        .post(&format!("http://{addr}/login"))
        .header("Cookie", &sign_in)
        .send_form([("csrf", csrf.as_str()), ("token", token)])
        .expect("POST /login");
    assert_eq!(signed.status().as_u16(), 303);
    let cookie = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("campaignd_session="))
        .expect("a session cookie")
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    cookie.split(';').next().unwrap_or_default().to_owned()
}

#[test]
fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base, "autonomy = \"manual\"", "");
    let (_daemon, addr) = crate::approvals::start(base);
    let agent = no_redirects();

    // Signing in needs the form's own token, matched against its cookie.
    let refused = agent
        .post(&format!("http://{addr}/login"))
        .send_form([("csrf", "made-up"), ("token", GLOBEX)])
        .expect("POST /login");
    assert_eq!(refused.status().as_u16(), 403);
    assert!(set_cookie(&refused, "campaignd_session").is_none());
    let wrong = {
        let form = agent
            .get(&format!("http://{addr}/login"))
            .call()
            .expect("GET /login");
        let sign_in = set_cookie(&form, "campaignd_sign_in").expect("a sign-in cookie");
        agent
            .post(&format!("http://{addr}/login"))
            .header("Cookie", &sign_in)
            .send_form([
                ("csrf", &sign_in["campaignd_sign_in=".len()..]),
                ("token", "not-a-token"),
            ])
            .expect("POST /login")
    };
    assert_eq!(wrong.status().as_u16(), 401);

    let session = http_sign_in(addr, GLOBEX);
    let request = next_pending(addr, "buys", &[]);
    let id = id_of(&request);
    let mut queue = agent
        .get(&format!("http://{addr}/approvals"))
        .header("Cookie", &session)
        .call()
        .expect("GET /approvals");
    assert_eq!(queue.status().as_u16(), 200);
    let csrf = csrf_field(&queue.body_mut().read_to_string().expect("the queue"));

    // Without the token, and with another one: 403, and the request still waits.
    let answer = format!("http://{addr}/approvals/{id}/answer");
    for sent in ["", "0123456789abcdef0123456789abcdef"] {
        let forged = agent
            .post(&answer)
            .header("Cookie", &session)
            .send_form([("csrf", sent), ("verdict", "approve"), ("reason", "forged")])
            .expect("POST the answer");
        assert_eq!(forged.status().as_u16(), 403, "csrf {sent:?}");
    }
    let (_, still) = call(addr, "GET", &format!("/v1/approvals/{id}"), GLOBEX, None);
    assert_eq!(still["state"], "pending", "{still}");

    // Without the session cookie the form leads to the sign-in page and does nothing either.
    let anonymous = agent
        .post(&answer)
        .send_form([
            ("csrf", csrf.as_str()),
            ("verdict", "approve"),
            ("reason", "anonymous"),
        ])
        .expect("POST the answer");
    assert_eq!(anonymous.status().as_u16(), 303);
    let (_, still) = call(addr, "GET", &format!("/v1/approvals/{id}"), GLOBEX, None);
    assert_eq!(still["state"], "pending", "{still}");

    // With it, the answer is the API's answer.
    let answered = agent
        .post(&answer)
        .header("Cookie", &session)
        .send_form([
            ("csrf", csrf.as_str()),
            ("verdict", "reject"),
            ("reason", "not today"),
        ])
        .expect("POST the answer");
    assert_eq!(answered.status().as_u16(), 303);
    let (_, done) = call(addr, "GET", &format!("/v1/approvals/{id}"), GLOBEX, None);
    assert_eq!(done["state"], "rejected", "{done}");
    assert_eq!(done["answer"]["why"], "not today");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_thousand_campaigns_every_page_is_paged_and_under_a_megabyte() {
    let run = crate::api::start_with(crate::api::With {
        bulk: 1_000,
        ..Default::default()
    })
    .await;
    let addr = run.addr;
    // The client blocks; the daemon serves on this runtime's workers meanwhile.
    let pages = tokio::task::spawn_blocking(move || {
        let session = http_sign_in(addr, crate::api::OPERATOR);
        let agent = no_redirects();
        [
            "/",
            "/?page=2",
            "/?page=21",
            "/?page=0",
            "/campaigns/bulk_0999",
            "/decisions",
            "/approvals",
            "/orders",
            "/agents",
        ]
        .map(|path| {
            let mut answer = agent
                .get(&format!("http://{addr}{path}"))
                .header("Cookie", &session)
                .call()
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            let status = answer.status().as_u16();
            let body = answer
                .body_mut()
                .with_config()
                .limit(2_000_000)
                .read_to_string()
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            (path, status, body)
        })
    })
    .await
    .expect("the requests");
    for (path, status, body) in &pages {
        assert!(body.len() < 1_000_000, "{path} is {} bytes", body.len());
        let expected = if *path == "/?page=0" { 400 } else { 200 };
        assert_eq!(*status, expected, "{path}: {body}");
    }
    let rows = |body: &str| body.matches("<tr data-campaign=").count();
    assert_eq!(rows(&pages[0].2), 50);
    assert!(pages[0].2.contains("1002 campaigns"), "{}", pages[0].2);
    assert!(pages[0].2.contains("page 1 of 21"));
    assert_eq!(rows(&pages[1].2), 50);
    assert_eq!(rows(&pages[2].2), 2, "the last page holds the rest");
    assert!(pages[3].2.contains(r#"data-code="invalid_parameter""#));
    run.daemon.shutdown().await.expect("shutdown");
}
