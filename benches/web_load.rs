//! The web desk with 100,000 inquiries: server time of the inbox, search and statistics pages, and
//! the export's memory while it streams.
//!
//! Run with `cargo bench --bench web_load` (a release build). It writes `WEB_INQUIRIES` (default
//! 100000) inquiries into a fresh database (spread over a year; mixed kinds, statuses, languages,
//! countries, topics; texts from a small vocabulary so searches find thousands), signs a staff
//! member in, and sends each request through the desk's router in process (no network): the time
//! from the request to the last byte of the answer is the server time. Each page is asked
//! `WEB_RUNS` times (default 20); the median and the worst are printed, with the aim of 50 ms.
//! The export of every inquiry is read chunk by chunk while the process's resident memory is
//! sampled; its growth over the run is printed beside the size of the CSV. Exits non-zero when a
//! median is over 50 ms or the export's memory grows by more than a quarter of the CSV's size.
//! `WEB_PAGES` (comma-separated paths) limits the pages measured and `WEB_EXPORT=0` skips the
//! export, to profile one page: `WEB_PAGES='/stats?period=all' WEB_EXPORT=0 WEB_RUNS=200 perf record ...`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use sme_advisor::config::Config;
use sme_advisor::store::Store;
use sme_advisor::web::{self, App, auth};

const NOW: i64 = 1_796_551_200;

fn rss_kb() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn seed(db: &std::path::Path, count: usize) {
    let words = [
        "loan",
        "credit",
        "export",
        "training",
        "coffee",
        "cashew",
        "supplier",
        "bank",
        "grant",
        "bakery",
        "textile",
        "tourism",
        "mentor",
        "linkage",
        "certification",
        "quality",
        "farm",
        "women",
        "youth",
        "equipment",
    ];
    let countries = ["uganda", "kenya", "ghana", "jordan", "brazil", "viet_nam", "senegal", "peru"];
    let topics = ["financing", "bds", "linkages", "training"];
    let langs = ["en", "fr", "es", "pt"];
    let conn = rusqlite::Connection::open(db).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO inquiries (at, lang, kind, text, matched, confidence, answered, status, topic, country, sector)
                 VALUES (?1, ?2, ?3, ?4, '', 0.5, ?5, ?6, ?7, ?8, 'agriculture')",
            )
            .unwrap();
        let mut x: u64 = 42;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..count {
            let kind = match next() % 10 {
                0 => "handoff",
                1..=3 => "recommendation",
                _ => "question",
            };
            let answered = kind != "question" || next() % 3 != 0;
            let status = match (kind, answered, next() % 5) {
                ("handoff", _, 0) => "needs_human",
                ("handoff", _, _) => "resolved",
                (_, false, 0) => "resolved",
                (_, false, _) => "new",
                _ => "answered",
            };
            let text = format!(
                "{} for my {} business in {}, question {i}",
                words[(next() % 20) as usize],
                words[(next() % 20) as usize],
                countries[(next() % 8) as usize]
            );
            let at = NOW - (next() % (365 * 86_400)) as i64;
            insert
                .execute(rusqlite::params![
                    at,
                    langs[(next() % 4) as usize],
                    kind,
                    text,
                    answered,
                    status,
                    topics[(next() % 4) as usize],
                    countries[(next() % 8) as usize]
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

async fn get(router: &axum::Router, path: &str, cookie: &str) -> (StatusCode, Duration, usize) {
    let start = Instant::now();
    let request = Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, start.elapsed(), body.len())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = std::env::var("WEB_INQUIRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let runs: usize = std::env::var("WEB_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20).max(1);
    let dir = std::env::temp_dir().join(format!("sme-advisor-web-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("db.sqlite3");
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut store = Store::open(&db).unwrap();
    store.grant("telegram", "101", sme_advisor::desk::Role::Staff, "bench", NOW).unwrap();
    let started = Instant::now();
    seed(&db, count);
    eprintln!("seeded {count} inquiries in {:.1} s", started.elapsed().as_secs_f64());
    let config = Config::from_lookup(|name| match name {
        "DIALOGS_DIR" => Some(root.join("dialogs").display().to_string()),
        "KNOWLEDGE_DIR" => Some(root.join("knowledge").display().to_string()),
        _ => None,
    })
    .unwrap();
    let content = sme_advisor::content::load_dirs_with(&config.dialogs_dir, &config.knowledge_dir, &[]).expect("the content loads");
    let now = Arc::new(AtomicI64::new(NOW));
    let clock = now.clone();
    let link = auth::login_link(&mut store, &[], "", "101", NOW).unwrap().unwrap();
    let app = Arc::new(App::new(
        Arc::new(Mutex::new(store)),
        Arc::new(RwLock::new(Arc::new(content))),
        &config,
        "http://bench",
        Arc::new(move || clock.load(Ordering::SeqCst)),
    ));
    let router = web::router(app.clone());
    let response = router.clone().oneshot(Request::get(&link).body(Body::empty()).unwrap()).await.unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();

    let pages = [
        "/inquiries",
        "/inquiries?page=1000",
        "/inquiries?q=coffee+ban",
        "/inquiries?status=new&lang=fr&country=kenya",
        "/inquiries?open=1&period=30d",
        "/inquiries/50000",
        "/stats",
        "/stats?period=7d",
        "/stats?period=all",
    ];
    // `WEB_PAGES=/stats?period=all` (comma-separated) measures only those pages, e.g. under a profiler.
    let only: Option<Vec<String>> = std::env::var("WEB_PAGES").ok().map(|v| v.split(',').map(str::to_string).collect());
    let pages: Vec<&str> = pages.into_iter().filter(|p| only.as_ref().is_none_or(|o| o.iter().any(|w| w == p))).collect();
    let mut failed = false;
    println!("{count} inquiries, {runs} runs each, server time in process (median / worst), aim 50 ms:");
    for page in pages {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let (status, took, len) = get(&router, page, &cookie).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            times.push(took);
            size = len;
        }
        times.sort();
        let median = times[times.len() / 2];
        let ok = median <= Duration::from_millis(50);
        failed |= !ok;
        println!(
            "  {page:<48} {:>7.1} ms / {:>7.1} ms  ({} KB){}",
            median.as_secs_f64() * 1000.0,
            times.last().unwrap().as_secs_f64() * 1000.0,
            size / 1024,
            if ok { "" } else { "  OVER 50 ms" }
        );
    }

    if std::env::var("WEB_EXPORT").as_deref() == Ok("0") {
        let _ = std::fs::remove_dir_all(&dir);
        std::process::exit(i32::from(failed));
    }
    // The export of everything, read chunk by chunk while memory is sampled.
    let before = rss_kb();
    let start = Instant::now();
    let request = Request::get("/export.csv").header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let (mut bytes, mut lines, mut peak) = (0usize, 0usize, before);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes += data.len();
            lines += data.iter().filter(|b| **b == b'\n').count();
            peak = peak.max(rss_kb());
        }
    }
    let growth_kb = peak - before;
    let csv_kb = (bytes / 1024) as i64;
    let constant = growth_kb * 4 <= csv_kb;
    failed |= !constant;
    println!(
        "  /export.csv: {} rows, {:.1} MB in {:.2} s; resident memory {} KB before, peak {} KB (+{} KB while streaming {} KB){}",
        lines - 1,
        bytes as f64 / 1_048_576.0,
        start.elapsed().as_secs_f64(),
        before,
        peak,
        growth_kb,
        csv_kb,
        if constant { "" } else { "  NOT CONSTANT" }
    );
    let _ = std::fs::remove_dir_all(&dir);
    if failed {
        std::process::exit(1);
    }
}
