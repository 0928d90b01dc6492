//! The staff desk: roles on every command and button, handoffs relayed through the staff group,
//! learned examples, exports a spreadsheet opens, and the server commands.

use std::process::Command;

use crate::fake_bot_api::FakeBotApi;
use crate::support;
use crate::telegram::{Bot, TOKEN, WAIT, press, wait_text};

const ADMIN: i64 = 9000;
const STAFF_GROUP: i64 = -100_500;

fn desk_env() -> Vec<(&'static str, String)> {
    vec![("ADMIN_IDS", ADMIN.to_string()), ("STAFF_CHAT_ID", STAFF_GROUP.to_string())]
}

fn start(api: &FakeBotApi, name: &str) -> Bot {
    api.add_chat(STAFF_GROUP);
    let env = desk_env();
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Bot::start(api, name, &extra)
}

/// Sends a text and waits for the bot's next message in that chat; returns its text.
async fn ask(api: &FakeBotApi, chat: i64, text: &str) -> String {
    let before = api.messages(chat).len();
    api.push_text(chat, chat, "en", text);
    let what = format!("an answer to {text:?} in chat {chat}");
    api.wait_until(&what, WAIT, |a| a.messages(chat).len() > before).await;
    api.messages(chat)[before..]
        .iter()
        .map(|m| m.plain_text.clone().or(m.caption.clone()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn inquiry_id(bot: &Bot, text: &str) -> i64 {
    bot.db().query_row("SELECT id FROM inquiries WHERE text = ?1 ORDER BY id DESC LIMIT 1", [text], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_goes_to_the_staff_group_and_back() {
    let api = FakeBotApi::start(TOKEN).await;
    let bot = start(&api, "handoff");
    let (staff, user) = (9001, 9100);
    assert!(ask(&api, ADMIN, "/grant 9001 staff").await.contains("now has the role staff"));
    // The bot cannot answer; the user asks for a human.
    assert!(ask(&api, user, "how do I bake sourdough bread").await.contains("human advisor"));
    press(&api, user, "Ask a human advisor");
    wait_text(&api, user, "What should the advisor know?").await;
    api.push_text(user, user, "en", "I want an oven loan for my bakery in Kampala");
    wait_text(&api, user, "passed your question to a human advisor").await;
    // The staff group gets the request with the profile and recent messages, and buttons.
    wait_text(&api, STAFF_GROUP, "Handoff request").await;
    let post = api.messages(STAFF_GROUP).last().unwrap().clone();
    let post_text = post.plain_text.clone().unwrap();
    assert!(post_text.contains("oven loan") && post_text.contains("sourdough"), "{post_text}");
    assert_eq!(post.button_labels(), vec!["Take".to_string(), "Resolve".to_string()]);
    // The bot learns the post's message id from Telegram's answer, a moment after the post shows;
    // a staff member replies seconds later, the test only once the bot knows its post.
    api.wait_until("the bot records its post", WAIT, |_| {
        bot.db().query_row("SELECT count(*) FROM handoff_posts", [], |r| r.get::<_, i64>(0)).unwrap_or(0) >= 1
    })
    .await;
    // A staff member replies to the post: the user gets it through the bot.
    api.push_group_reply(STAFF_GROUP, staff, "en", "Ask your bank about an equipment loan; we can help you prepare.", post.message_id);
    wait_text(&api, user, "An advisor answers:\nAsk your bank about an equipment loan").await;
    // The user's answer comes back into the thread.
    assert!(ask(&api, user, "Thank you, which documents do I need?").await.contains("Sent to your advisor"));
    // Wait on the call log itself: it is what the assertion below reads.
    api.wait_until("the user's answer in the thread", WAIT, |a| {
        a.calls_to("sendMessage").iter().any(|c| c.params["text"].as_str().is_some_and(|t| t.contains("which documents")))
    })
    .await;
    let relayed =
        api.calls_to("sendMessage").into_iter().find(|c| c.params["text"].as_str().is_some_and(|t| t.contains("which documents"))).unwrap();
    assert_eq!(relayed.params["reply_parameters"]["message_id"], post.message_id, "the answer is threaded under the post");
    // Someone without the staff role cannot answer in the thread.
    api.push_group_reply(STAFF_GROUP, 9999, "en", "I am not staff", post.message_id);
    wait_text(&api, STAFF_GROUP, "This command is for staff.").await;
    // Staff resolve it from the post.
    api.press_button(STAFF_GROUP, staff, post.message_id, "Resolve");
    wait_text(&api, user, "Your advisor has closed your question").await;
    let id = inquiry_id(&bot, "I want an oven loan for my bakery in Kampala");
    let db = bot.db();
    let status: String = db.query_row("SELECT status FROM inquiries WHERE id = ?1", [id], |r| r.get(0)).unwrap();
    assert_eq!(status, "resolved");
    let mut stmt = db.prepare("SELECT kind FROM inquiry_events WHERE inquiry_id = ?1 ORDER BY id").unwrap();
    let history: Vec<String> = stmt.query_map([id], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(history, vec!["staff_reply", "user_reply", "resolved"]);
    let unanswered: i64 = db
        .query_row("SELECT count(*) FROM inquiries WHERE text = 'how do I bake sourdough bread' AND answered = 0", [], |r| r.get(0))
        .unwrap();
    assert_eq!(unanswered, 1);
    // After resolving, the user's messages go to the bot again.
    assert!(ask(&api, user, "what is empretec").await.contains("EMPRETEC"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_privileged_command_and_button_checks_the_role() {
    let api = FakeBotApi::start(TOKEN).await;
    let bot = start(&api, "authz");
    let (user, agency, staff) = (9200, 9201, 9202);
    assert!(ask(&api, ADMIN, "/grant 9201 agency").await.contains("agency"));
    assert!(ask(&api, ADMIN, "/grant 9202 staff").await.contains("staff"));
    ask(&api, user, "how do I bake sourdough bread").await;
    let id = inquiry_id(&bot, "how do I bake sourdough bread");
    let forbidden = "This command is for staff.";
    let staff_commands = [
        "/inbox".to_string(),
        format!("/inquiry {id}"),
        format!("/resolve {id}"),
        "/stats 7d".into(),
        "/export all".into(),
        format!("/learn {id} genilem"),
    ];
    let admin_commands = ["/grant 9300 staff", "/revoke 9300 staff", "/roles", "/reload"];
    let staff_buttons =
        [format!("k:show:{id}"), format!("k:take:{id}"), format!("k:res:{id}"), "k:inbox:0".into(), format!("k:learn:{id}:genilem")];
    for (who, is_staff, is_admin) in [(user, false, false), (agency, false, false), (staff, true, false), (ADMIN, true, true)] {
        for command in &staff_commands {
            let photos = api.photos().len();
            let answer = ask(&api, who, command).await;
            assert_eq!(answer == forbidden, !is_staff, "user {who} {command}: {answer}");
            if is_staff && command.starts_with("/stats") {
                // The chart follows the text; the next command waits for it.
                api.wait_until("the chart after the statistics", WAIT, |a| a.photos().len() > photos).await;
            }
        }
        for command in admin_commands {
            let answer = ask(&api, who, command).await;
            assert_eq!(answer == forbidden, !is_admin, "user {who} {command}: {answer}");
        }
        // Forged or replayed desk buttons, pressed on any message the user has.
        for data in &staff_buttons {
            let on = api.messages(who).last().unwrap().message_id;
            let before = api.messages(who).len();
            api.push_stale_callback(who, who, on, data);
            api.wait_until("an answer to a desk button", WAIT, |a| a.messages(who).len() > before).await;
            let answer = api.messages(who).last().unwrap().plain_text.clone().unwrap_or_default();
            assert_eq!(answer == forbidden, !is_staff, "user {who} pressed {data}: {answer}");
        }
    }
    // Nothing the refused users tried took effect: only staff and the admin touched the inquiry.
    let db = bot.db();
    let mut stmt = db.prepare("SELECT DISTINCT actor FROM inquiry_events WHERE inquiry_id = ?1").unwrap();
    let actors: Vec<String> = stmt.query_map([id], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert!(actors.iter().all(|a| a == "staff 9202" || a == "staff 9000"), "{actors:?}");
    let roles: i64 =
        db.query_row("SELECT count(*) FROM roles WHERE external_id IN ('9200', '9201') AND role = 'staff'", [], |r| r.get(0)).unwrap();
    assert_eq!(roles, 0);
    // Bad arguments get the usage, never an error trace.
    for (command, usage) in [
        ("/inquiry twelve", "Usage: /inquiry"),
        ("/grant bob staff", "Usage: /grant"),
        ("/stats fortnight", "Usage: /stats"),
        ("/learn 1", "Usage: /learn"),
    ] {
        let answer = ask(&api, ADMIN, command).await;
        assert!(answer.starts_with(usage), "{command}: {answer}");
    }
    assert!(ask(&api, ADMIN, "/inquiry 999999").await.contains("no inquiry #999999"));
    // Statistics for the period: counts, share answered, top unanswered phrasings.
    let photos = api.photos().len();
    let stats = ask(&api, staff, "/stats 7d").await;
    assert!(
        stats.contains("Statistics for 7d") && stats.contains("Top unanswered phrasings: how do i bake sourdough bread (1)"),
        "{stats}"
    );
    api.wait_until("the chart after the statistics", WAIT, |a| a.photos().len() > photos).await;
    // The export arrives as a CSV document.
    ask(&api, staff, "/export all").await;
    let doc = api.documents().into_iter().find(|d| d.chat_id == staff).expect("a CSV document");
    assert!(doc.file_name.ends_with(".csv"));
    assert!(String::from_utf8(doc.bytes).unwrap().contains("how do I bake sourdough bread"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_stats_come_with_the_daily_chart_as_a_png_in_their_language() {
    let api = FakeBotApi::start(TOKEN).await;
    let _bot = start(&api, "stats-chart");
    let (staff, french_staff, user) = (9501, 9502, 9503);
    assert!(ask(&api, ADMIN, "/grant 9501 staff").await.contains("now has the role staff"));
    assert!(ask(&api, ADMIN, "/grant 9502 staff").await.contains("now has the role staff"));
    ask(&api, user, "how do I bake sourdough bread").await;
    ask(&api, user, "what is empretec").await;
    let stats = ask(&api, staff, "/stats 7d").await;
    assert!(stats.contains("Statistics for 7d"), "{stats}");
    api.wait_until("the chart of /stats", WAIT, |a| a.photos().iter().any(|p| p.chat_id == staff)).await;
    // One upload, multipart, after the text, with the caption of dialogs/desk.toml.
    let calls = api.calls_to("sendPhoto");
    assert_eq!(calls.len(), 1, "{}", api.dump_calls(10));
    assert_eq!(calls[0].status, 200);
    assert_eq!(calls[0].files.len(), 1, "the photo is uploaded as a file part");
    let photo = api.photos().into_iter().find(|p| p.chat_id == staff).unwrap();
    let text_at =
        api.messages(staff).iter().find(|m| m.plain_text.as_deref().is_some_and(|t| t.contains("Statistics for 7d"))).unwrap().message_id;
    assert!(photo.message_id > text_at, "the chart follows the statistics text");
    assert_eq!(photo.caption.as_deref(), Some("Inquiries per day and the share of free questions answered, 7d."));
    assert!(photo.file_name.ends_with(".png"), "{}", photo.file_name);
    // A valid PNG of the size drawn: the signature, then the IHDR chunk with width and height.
    assert_eq!(&photo.bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&photo.bytes[12..16], b"IHDR");
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!((be32(&photo.bytes[16..20]), be32(&photo.bytes[20..24])), sme_advisor::charts::PNG_SIZE);
    assert_eq!(photo.size, Some(sme_advisor::charts::PNG_SIZE));
    assert!(photo.bytes.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]), "the PNG ends with IEND");
    // A French-speaking staff member gets the caption in French.
    api.push_text(french_staff, french_staff, "fr", "/stats 7d");
    api.wait_until("the French chart", WAIT, |a| a.photos().iter().any(|p| p.chat_id == french_staff)).await;
    let photo = api.photos().into_iter().find(|p| p.chat_id == french_staff).unwrap();
    assert_eq!(photo.caption.as_deref(), Some("Demandes par jour et part des questions libres avec réponse, 7d."));
    // A period without inquiries gets the text and no chart.
    let photos = api.photos().len();
    let empty = ask(&api, staff, "/stats 2020-01-01..2020-01-02").await;
    assert!(empty.contains("Inquiries: 0"), "{empty}");
    assert!(ask(&api, staff, "/inbox").await.contains("Open inquiries"), "the desk goes on, and nothing came between");
    assert_eq!(api.photos().len(), photos, "no chart for an empty period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learned_example_is_answered_at_once_and_after_a_restart() {
    let api = FakeBotApi::start(TOKEN).await;
    let mut bot = start(&api, "learn");
    let phrase = "who helps a new watch workshop grow";
    let first = ask(&api, 9400, phrase).await;
    assert!(!first.contains("Genilem (Switzerland)"), "not answered with Genilem before: {first}");
    let id = inquiry_id(&bot, phrase);
    // A phrasing that would steal another entry's questions is refused, with the reason.
    let clash = ask(&api, 9400, "what is empretec").await;
    assert!(clash.contains("EMPRETEC"));
    let clash_id = inquiry_id(&bot, "what is empretec");
    assert!(ask(&api, ADMIN, &format!("/learn {clash_id} genilem")).await.starts_with("Not added:"));
    assert!(ask(&api, ADMIN, &format!("/learn {id} genilem")).await.contains("It is answered from now on"));
    assert!(ask(&api, 9401, phrase).await.contains("Genilem (Switzerland)"));
    // After a restart it still is, and `check` sees and validates it.
    bot.kill();
    let dir = bot.dir.clone();
    let env = desk_env();
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _bot = Bot::start_in(&api, dir.clone(), &extra);
    assert!(ask(&api, 9402, phrase).await.contains("Genilem (Switzerland)"));
    let out = Command::new(env!("CARGO_BIN_EXE_sme-advisor"))
        .current_dir(support::root())
        .arg("check")
        .env("DATABASE_PATH", dir.join("bot.sqlite3"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A strict RFC 4180 reader, to prove a spreadsheet reads back what was written.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "lines end with CRLF"),
            (false, '\n') => panic!("a bare LF outside quotes"),
            (false, c) => field.push(c),
        }
        if !quoted && c == '\r' {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        }
    }
    rows
}

#[test]
fn exports_survive_commas_quotes_newlines_and_other_scripts() {
    use sme_advisor::engine::{self, Input};
    use sme_advisor::store::Store;
    let content = support::shipped();
    let mut store = Store::open_in_memory().unwrap();
    let texts = [
        "loan, credit \"and\" more",
        "line one\nline two\r\nline three",
        "قرض لمزرعتي",
        "የብድር ጥያቄ",
        "=1+2 looks like a formula",
        "tab\tseparated",
    ];
    for (i, t) in texts.iter().enumerate() {
        let now = 1_795_000_000 + i as i64;
        store.turn("terminal", &format!("u{i}"), "en", now, |s| engine::step(content, s, &Input::Text(t.to_string()), now)).unwrap();
    }
    let mut rows = store.inquiries(100).unwrap();
    rows.reverse();
    let csv = sme_advisor::desk::to_csv(&rows);
    assert!(
        csv.starts_with("\u{feff}id,time_utc,user,language,kind,status,answered,confidence,matched,topic,country,sector,taken_by,text\r\n")
    );
    let parsed = parse_csv(csv.trim_start_matches('\u{feff}'));
    assert_eq!(parsed.len(), texts.len() + 1);
    for (row, text) in parsed[1..].iter().zip(texts) {
        assert_eq!(row.len(), 14);
        let expected = if text.starts_with('=') { format!("'{text}") } else { text.to_string() };
        assert_eq!(row[13], expected);
    }
    let json: serde_json::Value = serde_json::from_str(&sme_advisor::desk::to_json(&rows)).unwrap();
    assert_eq!(json[2]["text"], "قرض لمزرعتي");
}

#[test]
fn the_server_commands_list_show_export_and_manage_roles() {
    use sme_advisor::engine::{self, Input};
    use sme_advisor::store::Store;
    let dir = std::env::temp_dir().join(format!("sme-advisor-cli-desk-{}", std::process::id()));
    let db = dir.join("db.sqlite3");
    {
        let mut store = Store::open(&db).unwrap();
        let content = support::shipped();
        for (user, text, at) in [("a", "how do I bake bread", 1_000), ("b", "what is empretec", 2_000_000_000)] {
            store.turn("telegram", user, "en", at, |s| engine::step(content, s, &Input::Text(text.into()), at)).unwrap();
        }
    }
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sme-advisor"))
            .current_dir(support::root())
            .args(args)
            .env("DATABASE_PATH", &db)
            .env("ADMIN_IDS", "42")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, out, _) = run(&["inquiries", "list", "--open"]);
    assert!(ok && out.contains("how do I bake bread") && !out.contains("empretec"), "{out}");
    let (ok, out, _) = run(&["inquiries", "export", "--format", "json", "--period", "2033-05-01..2033-05-31"]);
    assert!(ok && out.contains("what is empretec") && !out.contains("bake"), "{out}");
    let (ok, out, _) = run(&["inquiries", "show", "1"]);
    assert!(ok && out.contains("Inquiry #1"), "{out}");
    let (ok, _, err) = run(&["inquiries", "show", "99"]);
    assert!(!ok && err.contains("no inquiry #99") && !err.contains("panicked"), "{err}");
    let (ok, _, err) = run(&["inquiries", "list", "--period", "fortnight"]);
    assert!(!ok && err.contains("--period"), "{err}");
    assert!(run(&["roles", "grant", "777", "staff"]).0);
    let (ok, out, _) = run(&["roles", "list"]);
    assert!(ok && out.contains("42\tadmin") && out.contains("777\tstaff"), "{out}");
    let (ok, _, err) = run(&["roles", "grant", "777", "admin"]);
    assert!(!ok && err.contains("possible values: staff, agency"), "{err}");
    assert!(run(&["roles", "revoke", "777", "staff"]).0);
    assert!(!run(&["roles", "list"]).1.contains("777"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn retention_deletes_old_inquiries_and_nothing_else() {
    use sme_advisor::engine::{self, Input};
    use sme_advisor::store::Store;
    let content = support::shipped();
    let mut store = Store::open_in_memory().unwrap();
    for (user, at) in [("old", 1_000), ("edge", 5_000), ("new", 9_000)] {
        store.turn("telegram", user, "en", at, |s| engine::step(content, s, &Input::Text("what is empretec".into()), at)).unwrap();
    }
    let old = store.inquiries(10).unwrap().into_iter().find(|r| r.at == 1_000).unwrap().id;
    store.inquiry_event(old, "staff 1", "taken", "", None, 1_100).unwrap();
    assert_eq!(store.purge_inquiries(5_000).unwrap(), 1);
    let left: Vec<i64> = store.inquiries(10).unwrap().iter().map(|r| r.at).collect();
    assert_eq!(left, vec![9_000, 5_000]);
    assert!(store.events(old).unwrap().is_empty());
    // Profiles and sessions are not inquiries: retention leaves them.
    let user = store.user_id("telegram", "old", 10_000).unwrap();
    assert_eq!(store.rows_for_user(user).unwrap(), 3, "user, profile and session remain");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_fails_keeps_the_running_content() {
    let api = FakeBotApi::start(TOKEN).await;
    let dir = std::env::temp_dir().join(format!("sme-advisor-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&support::root().join("dialogs"), &dir.join("dialogs"));
    copy_dir(&support::root().join("knowledge"), &dir.join("knowledge"));
    let (dialogs, knowledge) = (dir.join("dialogs").display().to_string(), dir.join("knowledge").display().to_string());
    let _bot = Bot::start_in(&api, dir.clone(), &[("ADMIN_IDS", "9000"), ("DIALOGS_DIR", &dialogs), ("KNOWLEDGE_DIR", &knowledge)]);
    api.wait_polling(WAIT).await;
    let intents = dir.join("dialogs/intents.toml");
    let original = std::fs::read_to_string(&intents).unwrap();
    std::fs::write(&intents, format!("{original}\n[intent.broken\n")).unwrap();
    let answer = ask(&api, ADMIN, "/reload").await;
    assert!(answer.starts_with("Not reloaded: the content has 1 problem(s)") && answer.contains("intents.toml:"), "{answer}");
    assert!(ask(&api, 9700, "what is empretec").await.contains("EMPRETEC"), "the old content still answers");
    std::fs::write(&intents, original.replace("You're welcome! Good luck with your business.", "Glad to help!")).unwrap();
    let reloaded = format!("Content reloaded: {} knowledge entries", support::shipped().entries.len());
    assert!(ask(&api, ADMIN, "/reload").await.starts_with(&reloaded));
    assert!(ask(&api, 9700, "thank you").await.contains("Glad to help!"));
}
