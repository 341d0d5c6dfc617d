//! The agent and supervisor pages in a real browser (Debian's chromium, driven through
//! chromedriver by WebDriver): a sample call with an agitated 禁语 utterance is streamed, the
//! pop-up appears on its agent's page — and never on another agent's. A screenshot of the
//! pop-up is saved as target/live-agent-popup.png.

mod live_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use callqc::live::simulate::{self, Protocol};
use live_support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn chromedriver() -> Driver {
    assert!(
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists(),
        "chromium and chromium-driver are missing: run scripts/setup.sh (it installs Debian's packages)"
    );
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1000,700",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver")
}

async fn sign_in(page: &Client, url: &str, token: &str) {
    page.goto(url).await.unwrap();
    page.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    page.find(Locator::Css("form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn text_of(page: &Client, css: &str) -> String {
    match page.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn wait_for_text(page: &Client, css: &str, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = text_of(page, css).await;
        if t.contains(wanted) || Instant::now() > deadline {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Texts of the pop-ups on a page now.
async fn popups(page: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for e in page
        .find_all(Locator::Css(".popup"))
        .await
        .unwrap_or_default()
    {
        out.push(e.text().await.unwrap_or_default());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warning_pops_up_on_its_agents_page_and_not_on_another_agents() {
    let driver = chromedriver().await;
    let server = start("shed_after_s = 30").await;
    let base = server.http();
    let profiles = tempfile::tempdir().unwrap();
    let agent = browser(&driver, &profiles.path().join("a")).await;
    let other = browser(&driver, &profiles.path().join("b")).await;
    let supervisor = browser(&driver, &profiles.path().join("s")).await;

    sign_in(&agent, &format!("{base}/agent"), AGENT_6618).await;
    sign_in(&other, &format!("{base}/agent"), AGENT_2051).await;
    sign_in(&supervisor, &format!("{base}/supervisor"), SUPERVISOR).await;
    assert!(
        wait_for_text(&agent, "#status", "坐席 6618")
            .await
            .contains("空闲")
    );
    assert!(
        wait_for_text(&other, "#status", "坐席 2051")
            .await
            .contains("2051")
    );
    assert!(
        wait_for_text(&supervisor, "#status", "已登录")
            .await
            .contains("supervisor")
    );

    // A wrong token is refused on the page itself.
    let intruder = browser(&driver, &profiles.path().join("x")).await;
    sign_in(
        &intruder,
        &format!("{base}/agent"),
        "not-a-valid-token-000000",
    )
    .await;
    assert!(
        wait_for_text(&intruder, "#signin-error", "令牌无效")
            .await
            .contains("令牌无效")
    );
    let _ = intruder.close().await;

    let opts = server.options(Protocol::Ws, 2.0);
    let stream = tokio::spawn(async move {
        simulate::run_call(&sample("call05"), "browser-call05".into(), &opts).await
    });
    let mut seen = Vec::new();
    let mut seen_elsewhere = Vec::new();
    let mut in_call = false;
    let mut screenshot = false;
    while !stream.is_finished() {
        in_call |= text_of(&agent, "#status").await.contains("通话中");
        for p in popups(&agent).await {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        if !screenshot && seen.iter().any(|p| p.contains("禁语提醒")) {
            let png = agent.screenshot().await.unwrap();
            let out = repo().join("target/live-agent-popup.png");
            std::fs::write(&out, png).unwrap();
            screenshot = true;
        }
        seen_elsewhere.extend(popups(&other).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let report = stream.await.unwrap();
    assert_eq!(report.error, None);
    assert!(in_call, "the status line never said the call was on");
    assert!(
        seen.iter()
            .any(|p| p.contains("禁语提醒") && p.contains("「")),
        "no 禁语 pop-up on agent 6618's page: {seen:?}"
    );
    assert!(seen.iter().any(|p| p.contains("语气提醒")), "{seen:?}");
    assert!(screenshot);
    assert!(
        seen_elsewhere.is_empty(),
        "agent 2051 saw: {seen_elsewhere:?}"
    );
    assert!(
        wait_for_text(&agent, "#status", "空闲")
            .await
            .contains("空闲")
    );

    // A pop-up can be dismissed, and fades by itself otherwise.
    if let Ok(button) = agent.find(Locator::Css(".popup button")).await {
        let before = popups(&agent).await.len();
        button.click().await.unwrap();
        assert_eq!(popups(&agent).await.len(), before - 1);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(popups(&agent).await.is_empty(), "pop-ups did not fade");

    // The supervisor saw the warnings as they happened.
    let feed = text_of(&supervisor, "#warnings").await;
    assert!(
        feed.contains("坐席 6618") && feed.contains("禁语提醒"),
        "{feed}"
    );

    for c in [agent, other, supervisor] {
        let _ = c.close().await;
    }
    server.wait_stored().await;
    server.server.shutdown().await;
}
