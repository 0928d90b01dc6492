//! What a hostile or unlucky user can send, end to end through the fake Bot API: nothing stops the
//! bot, a panic is contained and quarantined, readiness reports a stuck worker, backups hold.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use crate::fake_bot_api::FakeBotApi;
use crate::telegram::{Bot, TOKEN, WAIT, texts, wait_text};

const ADMIN: i64 = 9_001;

/// Texts and commands a hostile or unlucky user may send.
fn hostile_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "/stats é",
        "/export 7ü",
        "/stats İİİİİİ",
        "/stats 2026-02-31..2026-03-01",
        "/export 99999999999999999999999999d",
        "/inquiry 99999999999999999999999999",
        "/resolve -1",
        "/learn 1 ../../etc/passwd",
        "/grant 1 superuser",
        "/broadcast \u{202e}evil",
        "/start ../../../etc",
        "/start İ",
        "/menu@sme_advisor_test_bot now",
        "/ﬁnance",
        "İstanbul ßtraße ǅemal ﬁnance",
        "مرحبا أريد قرضا لمزرعتي في السودان",
        "שלום abc مرحبا \u{200f}mixed\u{200e} directions",
        "<b>bold</b> <script>alert(1)</script> &amp; &#0; <a href=\"javascript:x\">x</a>",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000009",
        "\u{200b}\u{200d}\u{feff}",
        "🇺🇬🇰🇪👩🏽‍🌾💸",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    texts.push(format!("a{}", "\u{301}".repeat(3_000)));
    texts.push("credit uganda ".repeat(292).trim_end().to_string());
    texts.push("İ".repeat(4_000));
    texts
}

/// Sends each text in turn and waits until the bot has answered it (a new message in the chat).
async fn answered_one_by_one(api: &FakeBotApi, chat: i64, texts_to_send: &[String]) {
    for text in texts_to_send {
        let before = api.messages(chat).len();
        api.push_text(chat, chat, "en", text);
        let what = format!("chat {chat} to answer {:?}", text.chars().take(30).collect::<String>());
        api.wait_until(&what, WAIT, |a| a.messages(chat).len() > before).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_from_many_users_are_all_answered_and_the_bot_goes_on() {
    let api = FakeBotApi::start(TOKEN).await;
    let bot = Bot::start(&api, "hostile", &[("ADMIN_IDS", &ADMIN.to_string())]);
    let texts_to_send = hostile_texts();
    // Twelve users at once, the admin among them (staff commands get past the role check).
    let mut users: Vec<i64> = (0..11).map(|i| 4_000 + i).collect();
    users.push(ADMIN);
    let mut tasks = tokio::task::JoinSet::new();
    let api = std::sync::Arc::new(api);
    for (i, user) in users.iter().copied().enumerate() {
        let api = api.clone();
        let mut mine = texts_to_send.clone();
        let n = mine.len();
        mine.rotate_left(i % n);
        tasks.spawn(async move { answered_one_by_one(&api, user, &mine).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("every hostile message is answered");
    }
    // Forged and stale buttons, groups with case mappings that change length.
    let menu = api.messages(4_000).last().unwrap().message_id;
    for data in ["k:res:1", "k:learn:1:x", "e:no-such-entry", "s:financing:nowhere:x", "r:x:y:99999999999999999999", "\u{0}", "é"] {
        api.push_stale_callback(4_000, 4_000, menu, data);
    }
    api.wait_until("every forged button answered", WAIT, |a| a.unanswered_callback_queries().is_empty()).await;
    let group = -7_001;
    api.push_group_text(group, 4_100, "en", "İİİİ @sme_advisor_test_bot what is empretec");
    wait_text(&api, group, "EMPRETEC").await;
    // Nothing panicked and nothing was quarantined; ordinary conversations are all answered.
    for user in &users {
        api.push_start(*user, *user, "en", "");
    }
    for user in &users {
        wait_text(&api, *user, "What does your business need?").await;
    }
    let log = bot.log();
    assert!(!log.contains("panicked") && !log.contains("quarantined"), "{log}");
    let admin = texts(&api, ADMIN);
    assert!(admin.contains("Usage: /stats or /export with a period"), "the admin gets the usage of /stats for `é`:\n{admin}");
    let quarantined: i64 = bot.db().query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0)).unwrap();
    assert_eq!(quarantined, 0);
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain HTTP GET on loopback: (status, body).
pub fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

async fn wait_status(port: u16, path: &str, status: u16, timeout: Duration) -> String {
    let start = std::time::Instant::now();
    loop {
        let (got, body) = tokio::task::spawn_blocking({
            let path = path.to_string();
            move || get(port, &path)
        })
        .await
        .unwrap();
        if got == status {
            return body;
        }
        assert!(start.elapsed() < timeout, "{path} answered {got}, not {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_quarantined_and_the_chat_goes_on_and_readiness_sees_a_stuck_worker() {
    let api = FakeBotApi::start(TOKEN).await;
    let port = free_port();
    let settings = [
        ("ADMIN_IDS", ADMIN.to_string()),
        ("SME_ADVISOR_TEST_HOOKS", "1".to_string()),
        ("METRICS_LISTEN", format!("127.0.0.1:{port}")),
        ("WORKER_STUCK_SECS", "1".to_string()),
        ("WORKERS", "2".to_string()),
    ];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut bot = Bot::start(&api, "quarantine", &settings);
    wait_status(port, "/readyz", 200, WAIT).await;
    assert_eq!(get(port, "/healthz").0, 200);

    // A forced panic: tried three times, quarantined, the user gets an apology, the chat goes on.
    let chat = 5_001;
    api.push_text(chat, chat, "fr", "__test_panic__");
    wait_text(&api, chat, "un problème est survenu de notre côté").await;
    api.push_text(chat, chat, "fr", "qu'est-ce que empretec");
    wait_text(&api, chat, "EMPRETEC").await;
    let (update_id, attempts, error): (i64, i64, String) =
        bot.db().query_row("SELECT update_id, attempts, error FROM quarantine", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!(attempts, 3);
    assert!(error.contains("test hook: a forced panic"), "{error}");
    let log = bot.log();
    assert!(!log.contains("__test_panic__") && !log.contains("qu'est-ce"), "no message text in the log:\n{log}");
    let metrics = wait_status(port, "/metrics", 200, WAIT).await;
    assert!(metrics.contains("sme_quarantined_updates 1"), "{metrics}");
    assert!(metrics.contains("sme_updates_handled_total") && metrics.contains("sme_turn_seconds_bucket"), "{metrics}");

    // Admins see it under /stats.
    api.push_text(ADMIN, ADMIN, "en", "/stats");
    wait_text(&api, ADMIN, "1 message(s) could not be handled").await;

    // A stuck worker makes /readyz fail with the reason, and it recovers.
    api.push_text(5_002, 5_002, "en", "__test_stall_3__");
    let body = wait_status(port, "/readyz", 503, WAIT).await;
    assert!(body.contains("worker") && body.contains("on one update"), "{body}");
    wait_status(port, "/readyz", 200, WAIT).await;

    // After a restart the quarantined update does not come back; `quarantine retry` runs it again.
    bot.kill();
    let apologies = |api: &FakeBotApi| texts(api, chat).matches("un problème est survenu").count();
    assert_eq!(apologies(&api), 1);
    let bot = Bot::start_in(&api, bot.dir.clone(), &settings);
    let db = bot.dir.join("bot.sqlite3");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sme-advisor"))
        .args(["quarantine", "list"])
        .env("DATABASE_PATH", &db)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&update_id.to_string()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sme-advisor"))
        .args(["quarantine", "retry", &update_id.to_string()])
        .env("DATABASE_PATH", &db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The hook still panics, so the retried update ends in the quarantine again, with a second apology.
    api.wait_until("the retried update to be quarantined again", WAIT, |a| apologies(a) == 2).await;
    api.push_text(chat, chat, "fr", "/menu");
    api.wait_until("the chat to go on after the retry", WAIT, |a| texts(a, chat).matches("EMPRETEC").count() >= 1).await;
    drop(bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_holds_every_inquiry_committed_before_it() {
    let api = std::sync::Arc::new(FakeBotApi::start(TOKEN).await);
    let bot = Bot::start(&api, "backup", &[("LOG_FORMAT", "json")]);
    api.push_start(6_000, 6_000, "en", "");
    wait_text(&api, 6_000, "What does your business need?").await;
    // Forty users asking questions while the backup is taken.
    let mut tasks = tokio::task::JoinSet::new();
    for user in 6_001..6_041 {
        let api = api.clone();
        tasks.spawn(async move {
            let questions: Vec<String> = ["what is empretec", "credit in uganda", "supplier programme jordan", "loan for a bakery"]
                .iter()
                .map(|q| q.to_string())
                .collect();
            answered_one_by_one(&api, user, &questions).await;
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: Vec<i64> = {
        let db = bot.db();
        let mut stmt = db.prepare("SELECT id FROM inquiries ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert!(!before.is_empty());
    let copy = bot.dir.join("backup.sqlite3");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sme-advisor"))
        .args(["backup", copy.to_str().unwrap()])
        .env("DATABASE_PATH", bot.dir.join("bot.sqlite3"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    while let Some(done) = tasks.join_next().await {
        done.expect("every question answered during the backup");
    }
    // LOG_FORMAT=json: every log line is one JSON object with a level and a message.
    let log = bot.log();
    assert!(log.lines().count() >= 2, "{log}");
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string() && value["fields"]["message"].is_string(), "{line}");
    }
    let backup = rusqlite::Connection::open(&copy).unwrap();
    let integrity: String = backup.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    for id in &before {
        let n: i64 = backup.query_row("SELECT count(*) FROM inquiries WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "inquiry {id} committed before the backup is in it");
    }
}
