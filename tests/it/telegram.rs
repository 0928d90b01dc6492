//! The real `sme-advisor serve` binary against the fake Bot API: conversations, faults, restarts and secrets.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::fake_bot_api::{FakeBotApi, Faults};
use crate::support;

pub const TOKEN: &str = "123456789:AAHtestTOKENsecretVALUEabcdefghijk";
pub const WAIT: Duration = Duration::from_secs(15);

/// A running bot process with its own database and log file.
pub struct Bot {
    pub child: Child,
    pub dir: PathBuf,
}

impl Bot {
    pub fn start(api: &FakeBotApi, name: &str, extra: &[(&str, &str)]) -> Bot {
        let dir = std::env::temp_dir().join(format!("sme-advisor-tg-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Bot::start_in(api, dir, extra)
    }

    pub fn start_in(api: &FakeBotApi, dir: PathBuf, extra: &[(&str, &str)]) -> Bot {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("bot.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sme-advisor"));
        cmd.current_dir(support::root())
            .arg("serve")
            .env("TELOXIDE_TOKEN", TOKEN)
            .env("TELOXIDE_API_URL", api.url())
            .env("DATABASE_PATH", dir.join("bot.sqlite3"))
            .env("RUST_LOG", "info")
            .env_remove("WEBHOOK_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Bot { child: cmd.spawn().expect("the binary starts"), dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bot.log")).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.join("bot.sqlite3")).unwrap()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn labels(api: &FakeBotApi, chat: i64) -> Vec<(i64, String)> {
    api.messages(chat).iter().flat_map(|m| m.button_labels().into_iter().map(move |l| (m.message_id, l))).collect()
}

/// Presses the newest button with this label in the chat.
pub fn press(api: &FakeBotApi, chat: i64, label: &str) -> i64 {
    let (message_id, _) = labels(api, chat)
        .into_iter()
        .rev()
        .find(|(_, l)| l == label)
        .unwrap_or_else(|| panic!("no button {label:?} in chat {chat}: {:?}", labels(api, chat)));
    api.press_button(chat, chat, message_id, label)
}

pub fn texts(api: &FakeBotApi, chat: i64) -> String {
    api.messages(chat).iter().filter_map(|m| m.plain_text.clone()).collect::<Vec<_>>().join("\n---\n")
}

pub async fn wait_text(api: &FakeBotApi, chat: i64, needle: &str) {
    let what = format!("chat {chat} to show {needle:?}");
    api.wait_until(&what, WAIT, |a| texts(a, chat).contains(needle)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_taps_through_financing_to_recommendations() {
    let api = FakeBotApi::start(TOKEN).await;
    let bot = Bot::start(&api, "flow", &[]);
    let chat = 1001;
    api.push_start(chat, chat, "en", "");
    wait_text(&api, chat, "What does your business need?").await;
    let menu_id = labels(&api, chat).into_iter().find(|(_, l)| l == "Financing").unwrap().0;
    press(&api, chat, "Financing");
    wait_text(&api, chat, "Which country").await;
    // The menu the user tapped was edited in place, not sent again.
    assert!(api.message(chat, menu_id).unwrap().edit_count >= 1);
    api.push_text(chat, chat, "en", "Ugnda");
    wait_text(&api, chat, "Which sector").await;
    press(&api, chat, "Agriculture and food");
    wait_text(&api, chat, "How big is your business?").await;
    press(&api, chat, "Small (10 to 49 people)");
    wait_text(&api, chat, "Why it fits: matches Uganda").await;
    api.wait_until("every button press answered", WAIT, |a| a.unanswered_callback_queries().is_empty()).await;
    // Each press is answered right after its first reply, not before it: the reply is one round
    // trip sooner, and the button's progress bar lasts until it is there.
    let calls: Vec<String> = api
        .calls()
        .into_iter()
        .filter(|c| matches!(c.method.as_str(), "answerCallbackQuery" | "editMessageText" | "sendMessage"))
        .map(|c| c.method)
        .collect();
    let answers: Vec<usize> = calls.iter().enumerate().filter(|(_, m)| *m == "answerCallbackQuery").map(|(i, _)| i).collect();
    assert_eq!(answers.len(), 3, "{calls:?}");
    for i in answers {
        // Every press here is on a menu, which is edited in place.
        assert!(i > 0 && calls[i - 1] == "editMessageText", "its edit goes before each answer: {calls:?}");
    }
    let all = texts(&api, chat);
    assert!(all.contains("not a lender"), "financing cards carry the disclaimer:\n{all}");
    // HTML parse mode, link previews off, and the command menu registered.
    let send = api.calls_to("sendMessage").into_iter().next().unwrap();
    assert_eq!(send.params["parse_mode"], "HTML");
    assert_eq!(send.params["link_preview_options"]["is_disabled"], true);
    assert!(api.my_commands("default", "").is_some_and(|c| c.iter().any(|(name, _)| name == "human")));
    // The command menu in French, and no staff command in anyone's menu.
    let french = api.my_commands("default", "fr").expect("a French command menu");
    assert!(french.iter().any(|(name, description)| name == "human" && description.contains("conseiller")), "{french:?}");
    assert!(!french.iter().any(|(name, _)| name == "inbox" || name == "broadcast"));
    for (lang, human) in [("es", "Hablar con un asesor"), ("pt", "Falar com um consultor")] {
        let menu = api.my_commands("default", lang).unwrap_or_else(|| panic!("a command menu in {lang}"));
        assert!(menu.iter().any(|(name, description)| name == "human" && description == human), "{lang}: {menu:?}");
    }
    // A Brazilian phone (pt-BR) gets Portuguese, and a question typed in Spanish is answered in it.
    api.push_start(1002, 1002, "pt-BR", "");
    wait_text(&api, 1002, "Do que a sua empresa precisa?").await;
    api.push_text(1002, 1002, "pt-BR", "¿qué es empretec?");
    wait_text(&api, 1002, "O EMPRETEC é o programa da UNCTAD").await;
    let db = bot.db();
    let (profile_country, recommended): (String, i64) = db
        .query_row(
            "SELECT p.country, (SELECT count(*) FROM inquiries WHERE kind = 'recommendation') FROM profiles p JOIN users u ON u.id = p.user_id WHERE u.external_id = '1001'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((profile_country.as_str(), recommended), ("uganda", 1));
    assert!(api.bot_errors().is_empty(), "the bot made no invalid call: {:?}", api.bot_errors());
    // Logs at info carry no message text.
    let log = bot.log();
    assert!(log.contains("update handled") && !log.contains("Ugnda"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_links_inline_mode_old_buttons_stickers_and_groups() {
    let api = FakeBotApi::start(TOKEN).await;
    let _bot = Bot::start(&api, "features", &[]);
    // A free question with a typo.
    api.push_text(2001, 2001, "en", "wat is empretc");
    wait_text(&api, 2001, "EMPRETEC").await;
    // A deep link to one programme, as an agency would print on a leaflet.
    api.push_start(2002, 2002, "en", "genilem");
    wait_text(&api, 2002, "Genilem").await;
    // Inline mode lists matching entries, shareable with a link back to the bot.
    api.push_inline_query(2003, "en", "credit uganda");
    api.wait_until("an inline answer", WAIT, |a| !a.inline_answers().is_empty()).await;
    let answer = &api.inline_answers()[0];
    let results = &answer.results;
    assert!(!results.is_empty() && results.len() <= 50);
    assert!(results.iter().any(|r| r["id"] == "uganda-business-linkages"), "{results:?}");
    assert!(
        results[0]["reply_markup"]["inline_keyboard"][0][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://t.me/sme_advisor_test_bot?start=")
    );
    // A button from a menu that no longer exists: a polite note and the current menu.
    api.push_text(2004, 2004, "en", "hello");
    wait_text(&api, 2004, "What does your business need?").await;
    let old = api.messages(2004).last().unwrap().message_id;
    api.push_stale_callback(2004, 2004, old, "s:retired_flow:old_step:x");
    api.wait_until("the old button answered", WAIT, |a| texts(a, 2004).contains("This menu has changed")).await;
    api.wait_until("the old button press answered", WAIT, |a| a.unanswered_callback_queries().is_empty()).await;
    // Messages of one chat are answered in the order they were sent.
    for q in ["what is empretec", "tell me about genilem", "what is unido", "what is empretec"] {
        api.push_text(2007, 2007, "en", q);
    }
    api.wait_until("four answers in chat 2007", WAIT, |a| a.messages(2007).len() >= 4).await;
    let order: Vec<String> = api
        .messages(2007)
        .iter()
        .map(|m| m.plain_text.clone().unwrap_or_default().lines().next().unwrap_or_default().to_string())
        .collect();
    assert!(
        order[0].contains("EMPRETEC") && order[1].contains("Genilem") && order[2].contains("UNIDO") && order[3].contains("EMPRETEC"),
        "{order:?}"
    );
    // An entry's official link is a URL button (it opens the page; no callback data).
    let markup = api.messages(2007)[0].reply_markup.clone().expect("the card has buttons");
    let rows = markup["inline_keyboard"].as_array().cloned().unwrap_or_default();
    let link = rows.iter().flat_map(|r| r.as_array().cloned().unwrap_or_default()).find(|b| b.get("url").is_some());
    assert!(
        link.as_ref().is_some_and(
            |b| b["url"].as_str().is_some_and(|u| u.starts_with("https://empretec.unctad.org")) && b.get("callback_data").is_none()
        ),
        "{markup}"
    );
    // A sticker gets a friendly answer.
    api.push_sticker(2005, 2005, "en", "👍");
    wait_text(&api, 2005, "I can only read text messages").await;
    // In a group the bot stays quiet unless addressed.
    let group = -3001;
    api.push_group_text(group, 2006, "en", "anyone know where to get a loan?");
    api.push_group_text(group, 2006, "en", "@sme_advisor_test_bot what is empretec");
    wait_text(&api, group, "EMPRETEC").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.messages(group).len(), 1, "only the addressed message is answered: {}", texts(&api, group));
    assert!(api.bot_errors().is_empty(), "the bot made no invalid call: {:?}", api.bot_errors());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_bot_loses_no_message_and_doubles_none_of_its_turns() {
    let api = FakeBotApi::start(TOKEN).await;
    let mut bot = Bot::start(&api, "kill", &[]);
    let users: Vec<i64> = (0..10).map(|i| 4000 + i).collect();
    let mut pushed = 0;
    for round in 0..3 {
        for &u in &users {
            api.push_text(u, u, "en", &format!("what is empretec {round}"));
            pushed += 1;
        }
    }
    // Kill it in the middle of the stream.
    api.wait_until("some answers", WAIT, |a| users.iter().map(|u| a.messages(*u).len()).sum::<usize>() >= 5).await;
    bot.kill();
    for &u in &users {
        api.push_text(u, u, "en", "what is empretec after");
        pushed += 1;
    }
    let dir = bot.dir.clone();
    let bot = Bot::start_in(&api, dir, &[]);
    api.wait_until("every message answered", Duration::from_secs(30), |a| users.iter().all(|u| a.messages(*u).len() >= 4)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answered: usize = users.iter().map(|u| api.messages(*u).len()).sum();
    let n_inquiries: i64 = bot.db().query_row("SELECT count(*) FROM inquiries", [], |r| r.get(0)).unwrap();
    assert_eq!(n_inquiries, pushed, "every question logged exactly once");
    // A reply can be sent twice only if the kill fell between Telegram accepting it and the outbox
    // forgetting it: at most the messages in flight.
    assert!(answered >= pushed as usize && answered <= pushed as usize + 16, "{answered} replies for {pushed} questions");
    let pending: i64 = bot.db().query_row("SELECT count(*) FROM updates WHERE done_at IS NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_sends_and_dropped_connections_still_answer_every_message() {
    let api = FakeBotApi::start(TOKEN).await;
    api.set_faults(Faults { server_error_probability: 0.10, drop_probability: 0.02, ..Faults::default() });
    let bot = Bot::start(&api, "faults", &[("RUST_LOG", "debug")]);
    let users: Vec<i64> = (0..8).map(|i| 5000 + i).collect();
    let api = std::sync::Arc::new(api);
    let mut tasks = tokio::task::JoinSet::new();
    for &u in &users {
        let api = api.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            for question in ["tell me about genilem", "what is empretec", "credit in uganda"] {
                let before = api.messages(u).len();
                let asked = std::time::Instant::now();
                api.push_text(u, u, "en", question);
                api.wait_until("an answer despite faults", Duration::from_secs(30), |a| a.messages(u).len() > before).await;
                latencies.push(asked.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap());
    }
    latencies.sort();
    // teloxide alone sleeps 10 s after every 5xx; the bot's own sender retries after a few hundred
    // ms. The bound leaves room for a loaded test machine; the benchmark measures p99 (README).
    assert!(latencies[latencies.len() - 1] < Duration::from_secs(5), "slowest answers: {:?}", &latencies[latencies.len() - 4..]);
    assert!(latencies[latencies.len() / 2] < Duration::from_secs(1), "median answer: {:?}", latencies[latencies.len() / 2]);
    let stats = api.fault_stats();
    assert!(stats.server_errors + stats.dropped > 0, "faults were injected: {stats:?}");
    for &u in &users {
        let t = texts(&api, u);
        assert!(t.contains("Genilem") && t.contains("EMPRETEC"), "chat {u}:\n{t}");
    }
    assert!(!api.chat_actions().is_empty(), "a delayed reply shows the typing action");
    // The token appears nowhere in the log, even at debug level with failing requests.
    let log = bot.log();
    assert!(log.contains("send failed") || log.contains("retry"), "the log shows the retries:\n{log}");
    assert!(!log.contains(TOKEN) && !log.contains("AAHtestTOKEN"), "the token leaked into the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_users_are_marked_inactive_and_429_is_respected() {
    let api = FakeBotApi::start(TOKEN).await;
    api.block_chat(6001);
    api.force_429(1, 1);
    let bot = Bot::start(&api, "blocked", &[]);
    api.push_text(6002, 6002, "en", "what is empretec");
    api.push_text(6001, 6001, "en", "what is empretec");
    wait_text(&api, 6002, "EMPRETEC").await;
    api.wait_until("the blocked user marked inactive", WAIT, |_| {
        bot.db()
            .query_row("SELECT blocked_at IS NOT NULL FROM users WHERE external_id = '6001'", [], |r| r.get::<_, bool>(0))
            .unwrap_or(false)
    })
    .await;
    assert!(api.too_many_requests_count() >= 1);
    let inquiries: i64 = bot.db().query_row("SELECT count(*) FROM inquiries", [], |r| r.get(0)).unwrap();
    assert_eq!(inquiries, 2, "the blocked user's question is logged even though the reply could not be delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refuses_requests_without_the_secret() {
    let api = FakeBotApi::start(TOKEN).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Telegram posts to the public https address; a proxy forwards it to the local listener.
    let public = "https://bot.example.org/telegram/hook";
    let url = format!("http://127.0.0.1:{port}/telegram/hook");
    let _bot = Bot::start(
        &api,
        "webhook",
        &[("WEBHOOK_URL", public), ("WEBHOOK_LISTEN", &format!("127.0.0.1:{port}")), ("WEBHOOK_SECRET", "s3cret-value")],
    );
    api.wait_until("setWebhook", WAIT, |a| a.webhook_url() == public).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The update below reaches the bot directly, so tell the fake the chat exists.
    api.add_chat(7001);
    let client = reqwest::Client::new();
    let update = json!({"update_id": 77, "message": {"message_id": 1, "date": 0, "chat": {"id": 7001, "type": "private", "first_name": "W"},
        "from": {"id": 7001, "is_bot": false, "first_name": "W", "language_code": "en"}, "text": "what is empretec"}});
    let post = |secret: Option<&'static str>| {
        let mut request = client.post(&url).json(&update);
        if let Some(s) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(post(Some("s3cret-value")).await.unwrap().status(), 200);
    // Telegram may deliver the same update again: it is answered once.
    assert_eq!(post(Some("s3cret-value")).await.unwrap().status(), 200);
    wait_text(&api, 7001, "EMPRETEC").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.messages(7001).len(), 1);
}

#[test]
fn bad_configuration_stops_start_up_with_one_clear_line() {
    // Per process: test runs of other builds (another schema version) may share the folder.
    let database = std::env::temp_dir().join(format!("sme-advisor-cfg-{}.sqlite3", std::process::id()));
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sme-advisor"));
        cmd.current_dir(support::root()).arg("serve").env_remove("TELOXIDE_TOKEN").env("DATABASE_PATH", &database);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, err) = run(&[]);
    assert!(!ok && err.contains("TELOXIDE_TOKEN") && !err.contains("panicked"), "{err}");
    let (ok, err) = run(&[("TELOXIDE_TOKEN", "12345:short-secret-xyz")]);
    assert!(!ok && err.contains("TELOXIDE_TOKEN") && !err.contains("short-secret-xyz"), "{err}");
    let (ok, err) = run(&[("TELOXIDE_TOKEN", TOKEN), ("TELOXIDE_API_URL", "http://127.0.0.1:9/"), ("WORKERS", "many")]);
    assert!(!ok && err.contains("WORKERS") && !err.contains(TOKEN), "{err}");
    // An unreachable Bot API: a clear error, without the token.
    let (ok, err) = run(&[("TELOXIDE_TOKEN", TOKEN), ("TELOXIDE_API_URL", "http://127.0.0.1:9/")]);
    assert!(!ok && err.contains("getMe") && !err.contains(TOKEN), "{err}");
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", database.display())).ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_bot_cleanly_and_promptly() {
    let api = FakeBotApi::start(TOKEN).await;
    let mut bot = Bot::start(&api, "sigterm", &[]);
    api.push_text(8001, 8001, "en", "what is empretec");
    wait_text(&api, 8001, "EMPRETEC").await;
    api.wait_polling(WAIT).await;
    let started = std::time::Instant::now();
    let status = Command::new("kill").args(["-TERM", &bot.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = bot.child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the bot did not stop within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean exit: {exit:?}\n{}", bot.log());
    assert!(bot.log().contains("stopped"));
}

/// An example attached by another process (a separately run `sme-advisor web`, which writes the
/// shared database) reaches the running bot without `/reload`: its scheduler notices the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_example_learned_by_another_process_reaches_the_running_bot() {
    const QUESTION: &str = "my tailoring shop wants to grow, who helps";
    const ENTRY_NAME: &str = "Business development services (BDS): what to expect";
    let api = FakeBotApi::start(TOKEN).await;
    let bot = Bot::start(&api, "learned-elsewhere", &[]);
    let chat = 9500;
    api.push_text(chat, chat, "en", QUESTION);
    api.wait_until("a first answer", WAIT, |a| !a.messages(chat).is_empty()).await;
    assert!(!texts(&api, chat).contains(ENTRY_NAME), "before: the question does not reach the entry:\n{}", texts(&api, chat));
    {
        let mut store = sme_advisor::store::Store::open(&bot.dir.join("bot.sqlite3")).unwrap();
        assert!(store.learn("bds-providers", "en", QUESTION, "web 1", sme_advisor::clock::now()).unwrap());
    }
    // Ask again until the answer names the entry: the scheduler looks every two seconds, and
    // loading the content takes a moment in a debug build.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let seen = api.messages(chat).len();
        api.push_text(chat, chat, "en", QUESTION);
        api.wait_until("an answer", WAIT, |a| a.messages(chat).len() > seen).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answer: String = api.messages(chat)[seen..].iter().filter_map(|m| m.plain_text.clone()).collect();
        if answer.contains(ENTRY_NAME) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the learned example never reached the bot; log:\n{}", bot.log());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(bot.log().contains("content rebuilt"), "the bot says why its content changed");
}
