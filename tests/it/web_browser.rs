//! The web desk in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! fantoccini). Sign in with a link, open the inbox, search, open an inquiry, reply, resolve;
//! the statistics at phone width (412 px) and at desktop width, with screenshots kept in
//! `<target>/web-screenshots/`; every form control has a label.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages; `.ci/run` installs them). Without
//! chromedriver the test says SKIPPED and passes, unless `WEB_BROWSER_TESTS=1` (set by `.ci/run`),
//! which makes a missing browser a failure.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::web::{Desk, STAFF};
use sme_advisor::web;

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("chromedriver")).find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target folder").join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn connect(port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"] }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
            Ok(client) => return client,
            Err(e) if std::time::Instant::now() > deadline => panic!("chromedriver did not start a browser: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Form controls without a label (or an aria-label), and buttons without text, on the page shown.
async fn unlabelled(client: &Client) -> Vec<String> {
    let script = r#"
        const bad = [];
        for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
            if (!(e.labels && e.labels.length) && !e.getAttribute('aria-label')) bad.push(e.outerHTML);
        }
        for (const b of document.querySelectorAll('button')) {
            if (!b.textContent.trim()) bad.push(b.outerHTML);
        }
        return bad;
    "#;
    let value = client.execute(script, vec![]).await.unwrap();
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
}

/// The page's text. A page still loading after a click may replace its body between finding it
/// and reading it (a stale element under a loaded machine): try again for up to five seconds.
async fn text(client: &Client) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match client.find(Locator::Css("body")).await {
            Ok(body) => match body.text().await {
                Ok(text) => return text,
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page's text could not be read: {last}");
}

async fn wait_path(client: &Client, path: &str) {
    for _ in 0..100 {
        if client.current_url().await.unwrap().path() == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser did not reach {path}: at {}", client.current_url().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_search_reply_and_resolve_in_a_real_browser() {
    let required = std::env::var("WEB_BROWSER_TESTS").is_ok_and(|v| v == "1");
    let Some(driver_path) = chromedriver() else {
        assert!(!required, "WEB_BROWSER_TESTS=1 but chromedriver is not installed (apt-get install chromium chromium-driver)");
        eprintln!(
            "SKIPPED: chromedriver is not installed; apt-get install chromium chromium-driver, or set WEB_BROWSER_TESTS=1 to require it"
        );
        return;
    };
    let desk = Desk::new("browser");
    let ids =
        desk.ask(&["how do I bake sourdough bread", "credit for coffee farmers in Kenya", "Où trouver un crédit pour ma boulangerie ?"]);
    desk.advance(-86_400);
    desk.ask(&["export training for cashew processors"]);
    desk.advance(86_400);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(listener, desk.app.clone(), async {
        let _ = stopped.await;
    }));
    let port = free_port();
    let _driver = Driver(
        Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let client = connect(port).await;
    let shots = screenshots_dir();

    // Sign in with a one-time link that leads on to the inbox.
    let link = desk.link(STAFF).unwrap().replace("http://desk.test", &base);
    client.goto(&format!("{link}?next=/inquiries")).await.unwrap();
    wait_path(&client, "/inquiries").await;
    let page = text(&client).await;
    assert!(page.contains("Signed in as staff 101") && page.contains("sourdough"), "{page}");
    assert_eq!(unlabelled(&client).await, Vec::<String>::new(), "inbox");

    // Search.
    client.find(Locator::Id("f-q")).await.unwrap().send_keys("sourdough").await.unwrap();
    client.find(Locator::Css("form.filters button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_path(&client, "/inquiries").await;
    let page = text(&client).await;
    assert!(page.contains("sourdough") && !page.contains("coffee farmers"), "{page}");

    // Open the inquiry, reply, resolve.
    client.find(Locator::Css(&format!("a[href='/inquiries/{}']", ids[0]))).await.unwrap().click().await.unwrap();
    wait_path(&client, &format!("/inquiries/{}", ids[0])).await;
    assert_eq!(unlabelled(&client).await, Vec::<String>::new(), "inquiry");
    client.find(Locator::Id("reply-text")).await.unwrap().send_keys("Ask a bakers' association near you.").await.unwrap();
    client.find(Locator::Css("form[action$='/reply'] button")).await.unwrap().click().await.unwrap();
    wait_path(&client, &format!("/inquiries/{}/reply", ids[0])).await;
    let page = text(&client).await;
    assert!(page.contains("The reply is on its way") && page.contains("Ask a bakers' association near you."), "{page}");
    client.find(Locator::Css("form[action$='/resolve'] button")).await.unwrap().click().await.unwrap();
    wait_path(&client, &format!("/inquiries/{}/resolve", ids[0])).await;
    let page = text(&client).await;
    assert!(page.contains(&format!("Inquiry #{} is resolved.", ids[0])), "{page}");
    assert_eq!(desk.app.store().inquiry(ids[0]).unwrap().unwrap().status, sme_advisor::desk::Status::Resolved);
    client.screenshot().await.map(|png| std::fs::write(shots.join("inquiry-desktop.png"), png)).unwrap().unwrap();

    // Statistics at phone width and at desktop width: nothing wider than the screen.
    for (width, name) in [(412u32, "stats-412.png"), (1280, "stats-desktop.png")] {
        client.set_window_size(width, 1000).await.unwrap();
        client.goto(&format!("{base}/stats?period=all")).await.unwrap();
        let page = text(&client).await;
        assert!(page.contains("Inquiries per day") && page.contains("By language"), "{page}");
        let overflow = client.execute("return document.documentElement.scrollWidth - window.innerWidth;", vec![]).await.unwrap();
        assert!(overflow.as_i64().unwrap_or(0) <= 0, "the stats page is wider than {width} px by {overflow}");
        assert_eq!(unlabelled(&client).await, Vec::<String>::new(), "stats");
        let png = client.screenshot().await.unwrap();
        assert!(png.len() > 1000);
        std::fs::write(shots.join(name), png).unwrap();
    }
    client.set_window_size(412, 1000).await.unwrap();
    client.goto(&format!("{base}/inquiries")).await.unwrap();
    std::fs::write(shots.join("inbox-412.png"), client.screenshot().await.unwrap()).unwrap();

    client.close().await.unwrap();
    let _ = stop.send(());
    let _ = server.await;
}
