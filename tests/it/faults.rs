//! The fault suite beyond `telegram.rs`: slow Bot API answers that time out, a storm of 429s, and a
//! database that is full. Each test says what it injects and what it verifies.

use std::time::{Duration, Instant};

use crate::fake_bot_api::{FakeBotApi, Faults};
use crate::telegram::{Bot, TOKEN, texts};

/// Injected: 25% of sends and edits are held 3 s while the bot gives up on a call after 2 s
/// (`BOT_API_TIMEOUT_SECS=2`), so every held call times out, is tried again, and still takes effect.
/// Verified: every question of 8 users is answered; a reply appears twice at most once per held
/// call; the bot keeps running and the token stays out of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out_and_every_question_is_still_answered() {
    let api = FakeBotApi::start(TOKEN).await;
    api.set_faults(Faults { slow_probability: 0.25, slow_by: Duration::from_secs(3), ..Faults::default() });
    let mut bot = Bot::start(&api, "slow", &[("BOT_API_TIMEOUT_SECS", "2"), ("RUST_LOG", "debug")]);
    let users: Vec<i64> = (0..8).map(|i| 7100 + i).collect();
    for &u in &users {
        api.push_text(u, u, "en", "tell me about genilem");
        api.push_text(u, u, "en", "what is empretec");
    }
    api.wait_until("every question answered despite slow answers", Duration::from_secs(60), |a| {
        users.iter().all(|u| {
            let t = texts(a, *u);
            t.contains("Genilem") && t.contains("EMPRETEC")
        })
    })
    .await;
    // Let the held calls finish, then count.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let slowed = api.fault_stats().slowed;
    assert!(slowed > 0, "some calls were held");
    let sent: usize = users.iter().map(|u| api.messages(*u).len()).sum();
    assert!(sent >= 16 && sent <= 16 + slowed as usize, "{sent} messages for 16 questions with {slowed} held calls");
    let log = bot.log();
    assert!(log.contains("timed out") || log.contains("timeout") || log.contains("retry"), "the log shows the timeouts:\n{log}");
    assert!(!log.contains(TOKEN), "the token leaked into the log");
    assert!(bot.child.try_wait().expect("status").is_none(), "the bot is still running");
    bot.kill();
}

/// Injected: the first 40 sends and edits are answered 429 with `retry_after` 1 while 10 users
/// start talking. Verified: every user gets the menu exactly once; after a 429 the bot waits
/// `retry_after` before sending again (no refused call is repeated within the second); the
/// storm is over in under 20 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_429s_is_waited_out_without_losing_or_doubling_a_reply() {
    let api = FakeBotApi::start(TOKEN).await;
    api.force_429(40, 1);
    let started = Instant::now();
    let _bot = Bot::start(&api, "storm", &[]);
    let users: Vec<i64> = (0..10).map(|i| 7200 + i).collect();
    for &u in &users {
        api.push_start(u, u, "en", "");
    }
    api.wait_until("every user got the menu", Duration::from_secs(30), |a| {
        users.iter().all(|u| texts(a, *u).contains("What does your business need?"))
    })
    .await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.too_many_requests_count(), 40, "the storm happened");
    assert_eq!(api.fault_stats().sends_during_retry_after, 0, "nothing sent to a chat before its retry_after ran out");
    for &u in &users {
        let menus =
            api.messages(u).iter().filter(|m| m.plain_text.as_deref().is_some_and(|t| t.contains("What does your business need?"))).count();
        assert_eq!(menus, 1, "chat {u} got the menu once");
    }
    // After each 429 the bot waited: calls refused and calls accepted never fall within the
    // second that followed the refusal for the same chat.
    let calls = api.calls();
    for (i, refused) in calls.iter().enumerate().filter(|(_, c)| c.status == 429) {
        let chat = &refused.params["chat_id"];
        let early = calls[i + 1..]
            .iter()
            .filter(|c| &c.params["chat_id"] == chat && c.method.starts_with("send"))
            .find(|c| c.at.saturating_sub(refused.at) < Duration::from_millis(900));
        assert!(early.is_none(), "a call to chat {chat} came {:?} after a 429", early.map(|c| c.at.saturating_sub(refused.at)));
    }
    assert!(took < Duration::from_secs(20), "the storm took {took:?}");
}

/// Injected: the database is capped at its current size (`DATABASE_MAX_MB`, below what it already
/// holds), as a full disk would leave it, while 6 users send a question. Verified: the bot keeps
/// running and logs that it cannot store; it confirms to Telegram no update it has not recorded;
/// once room is made (the test drops a filler table) every question is answered exactly once and
/// logged exactly once, with no update left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_loses_no_acknowledged_update() {
    let api = FakeBotApi::start(TOKEN).await;
    let dir = std::env::temp_dir().join(format!("sme-advisor-tg-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db_path = dir.join("bot.sqlite3");
    drop(sme_advisor::store::Store::open(&db_path).expect("a fresh database"));
    {
        let db = rusqlite::Connection::open(&db_path).unwrap();
        db.execute_batch("CREATE TABLE filler (b BLOB)").unwrap();
        for _ in 0..40 {
            db.execute("INSERT INTO filler VALUES (zeroblob(65536))", []).unwrap();
        }
    }
    let mut bot = Bot::start_in(&api, dir.clone(), &[("DATABASE_MAX_MB", "1")]);
    let users: Vec<i64> = (0..6).map(|i| 7300 + i).collect();
    let mut updates = Vec::new();
    for round in 0..3 {
        for &u in &users {
            updates.push(api.push_text(u, u, "en", &format!("what is empretec {round}")));
        }
    }
    api.wait_until("the bot reports the full database", Duration::from_secs(20), |_| {
        let log = bot.log();
        log.contains("cannot record updates") || log.contains("cannot store a turn")
    })
    .await;
    assert!(bot.child.try_wait().expect("status").is_none(), "the bot keeps running:\n{}", bot.log());
    // Nothing it has not recorded is confirmed to Telegram.
    let recorded: Vec<i64> = {
        let db = bot.db();
        let mut stmt = db.prepare("SELECT update_id FROM updates").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    for id in &updates {
        assert!(!api.is_confirmed(*id) || recorded.contains(id), "update {id} confirmed but not recorded");
    }
    // Make room, as an operator would.
    bot.db().execute_batch("DROP TABLE filler").unwrap();
    api.wait_until("every question answered once there is room", Duration::from_secs(60), |a| {
        users.iter().all(|u| a.messages(*u).len() >= 3)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for &u in &users {
        assert_eq!(api.messages(u).len(), 3, "chat {u}: one answer per question");
    }
    let db = bot.db();
    let logged: i64 = db.query_row("SELECT count(*) FROM inquiries", [], |r| r.get(0)).unwrap();
    let pending: i64 = db.query_row("SELECT count(*) FROM updates WHERE done_at IS NULL", [], |r| r.get(0)).unwrap();
    assert_eq!((logged, pending), (18, 0), "every question logged once, none pending");
    let log = bot.log();
    assert!(log.contains("database or disk is full"), "the log names the cause:\n{log}");
    bot.kill();
}
