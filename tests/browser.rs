//! The pages in a real browser (Debian's chromium, driven through chromedriver by WebDriver).
//! Live: a sample call with an agitated 禁语 utterance is streamed, the pop-up appears on its
//! agent's page — and never on another agent's (target/live-agent-popup.png). Trainers: on the
//! batch of the samples, findings are confirmed and dismissed through the trainer page and the
//! store and the recomputed score checked; a clip plays; the report and an export page open
//! offline (target/trainer-call.png, trainer-list.png, report.png, export-call05.png).

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

/// Poll until `css` matches an element whose text contains `wanted`; its text.
async fn wait_for_row(
    page: &Client,
    css: &str,
    wanted: &str,
) -> Option<fantoccini::elements::Element> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for e in page.find_all(Locator::Css(css)).await.unwrap_or_default() {
            if e.text().await.unwrap_or_default().contains(wanted) {
                return Some(e);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn stored_findings(
    db: &std::path::Path,
    call: &str,
) -> (Vec<callqc::store::StoredFinding>, f64, f64) {
    let store = callqc::store::Store::open(db).unwrap();
    let id = store.find_call(call).unwrap();
    let s = store.scores(id).unwrap().remove(0);
    (store.findings(id, None).unwrap(), s.total, s.machine_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trainers_confirm_and_dismiss_in_the_page_and_the_report_opens_offline() {
    let driver = chromedriver().await;
    // The nightly batch of the samples, then serve on its database.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("callqc.db");
    let o = Command::new(env!("CARGO_BIN_EXE_callqc"))
        .args(["batch", "samples", "--db", db.to_str().unwrap()])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let server = live_support::start_in(dir, "").await;
    assert_eq!(server.db(), db);
    let base = server.http();
    let profiles = tempfile::tempdir().unwrap();

    // An agent's token does not open the trainer pages.
    let agent = browser(&driver, &profiles.path().join("a")).await;
    sign_in(&agent, &format!("{base}/trainer"), AGENT_6618).await;
    assert!(
        wait_for_text(&agent, "#error", "登录失败")
            .await
            .contains("reviewers only")
    );
    let _ = agent.close().await;

    let page = browser(&driver, &profiles.path().join("t")).await;
    sign_in(&page, &format!("{base}/trainer"), REVIEWER).await;
    assert!(
        wait_for_text(&page, "#status", "王芳")
            .await
            .contains("王芳")
    );
    let row = wait_for_row(&page, "#flagged tbody tr", "call05")
        .await
        .expect("call05 is listed");
    // Filters narrow the list.
    page.find(Locator::Css("#filters input[name=agent]"))
        .await
        .unwrap()
        .send_keys("1846")
        .await
        .unwrap();
    page.find(Locator::Css("#apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listed = text_of(&page, "#flagged tbody").await;
    assert!(
        listed.contains("call03") && !listed.contains("call05"),
        "{listed}"
    );
    page.find(Locator::Css("#filters input[name=agent]"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    page.find(Locator::Css("#apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    drop(row);
    let row = wait_for_row(&page, "#flagged tbody tr", "call05")
        .await
        .expect("call05 again");
    row.click().await.unwrap();

    let (before, total_before, machine) = stored_findings(&db, "call05");
    assert_eq!(total_before, machine);
    let refusal = before
        .iter()
        .find(|f| f.item_id == "refusal")
        .unwrap()
        .clone();
    let tone = before
        .iter()
        .find(|f| f.item_id == "agent_tone")
        .unwrap()
        .clone();
    let refusal_row = wait_for_row(
        &page,
        &format!("#findings tbody tr[data-finding='{}']", refusal.id),
        "refusal",
    )
    .await
    .expect("findings shown");
    refusal_row
        .find(Locator::Css("input.note"))
        .await
        .unwrap()
        .send_keys("已转物业，非推诿")
        .await
        .unwrap();
    refusal_row
        .find(Locator::Css("button.dismiss"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = wait_for_text(
        &page,
        &format!("tr[data-finding='{}'] .state", refusal.id),
        "驳回",
    )
    .await;
    assert!(state.contains("驳回"), "{state}");
    let tone_row = page
        .find(Locator::Css(&format!("tr[data-finding='{}']", tone.id)))
        .await
        .unwrap();
    tone_row
        .find(Locator::Css("button.confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = wait_for_text(
        &page,
        &format!("tr[data-finding='{}'] .state", tone.id),
        "确认",
    )
    .await;
    assert!(state.contains("确认"), "{state}");
    let want = format!("得分 {:.1}", machine + refusal.points);
    assert!(
        wait_for_text(&page, "#call-score", &want)
            .await
            .contains(&want)
    );

    // The store says the same: verdicts by the token's reviewer, the score recomputed.
    let (after, total_after, machine_after) = stored_findings(&db, "call05");
    let r = after.iter().find(|f| f.id == refusal.id).unwrap();
    assert_eq!(r.review, callqc::store::ReviewState::Dismissed);
    assert_eq!(r.reviewer.as_deref(), Some("王芳"));
    assert_eq!(r.review_note.as_deref(), Some("已转物业，非推诿"));
    let t = after.iter().find(|f| f.id == tone.id).unwrap();
    assert_eq!(t.review, callqc::store::ReviewState::Confirmed);
    assert_eq!(total_after, machine + refusal.points);
    assert_eq!(machine_after, machine);

    // A clip plays from the recording.
    refusal_row
        .find(Locator::Css("button.play"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut duration = 0.0;
    while Instant::now() < deadline && duration <= 0.0 {
        duration = page
            .execute(
                "const a = document.querySelector('#findings audio'); return a && isFinite(a.duration) ? a.duration : 0;",
                vec![],
            )
            .await
            .unwrap()
            .as_f64()
            .unwrap_or(0.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        duration > refusal.end - refusal.start,
        "clip duration {duration}"
    );
    std::fs::write(
        repo().join("target/trainer-call.png"),
        page.screenshot().await.unwrap(),
    )
    .unwrap();

    // Back to the list: the rules table shows the dismissal.
    page.find(Locator::Css("#back"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let rules = wait_for_row(&page, "#rules tbody tr[data-item='refusal']", "refusal")
        .await
        .expect("rules table");
    let text = rules.text().await.unwrap();
    assert!(
        text.contains("0%"),
        "refusal: 1 reviewed, dismissed: {text}"
    );
    std::fs::write(
        repo().join("target/trainer-list.png"),
        page.screenshot().await.unwrap(),
    )
    .unwrap();

    // The report and an export page open from disk with nothing fetched.
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.html");
    let export = out.path().join("export");
    for args in [
        vec!["report", "--out", report.to_str().unwrap()],
        vec!["export", "call05", "--out", export.to_str().unwrap()],
    ] {
        let mut args = args;
        args.extend(["--db", db.to_str().unwrap()]);
        let o = Command::new(env!("CARGO_BIN_EXE_callqc"))
            .args(&args)
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    page.goto(&format!("file://{}", report.display()))
        .await
        .unwrap();
    assert_eq!(text_of(&page, "h1").await, "质检报告");
    let charts = page.find_all(Locator::Css("svg")).await.unwrap().len();
    assert!(charts >= 5, "{charts} charts");
    let precision = text_of(&page, "body").await;
    assert!(precision.contains("规则准确率") && precision.contains("0%"));
    std::fs::write(
        repo().join("target/report.png"),
        page.screenshot().await.unwrap(),
    )
    .unwrap();
    page.goto(&format!(
        "file://{}",
        export.join("call05/index.html").display()
    ))
    .await
    .unwrap();
    assert!(text_of(&page, "h1").await.contains("call05"));
    let audios = page.find_all(Locator::Css("audio")).await.unwrap().len();
    assert_eq!(audios, after.len(), "one playable clip per finding");
    std::fs::write(
        repo().join("target/export-call05.png"),
        page.screenshot().await.unwrap(),
    )
    .unwrap();

    let _ = page.close().await;
    server.server.shutdown().await;
}
