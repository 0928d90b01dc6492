//! Storage: one transaction per turn, migrations, sessions from older versions, and deleting a user's data.

use sme_advisor::engine::{self, Input, SESSION_VERSION};
use sme_advisor::store::Store;

use crate::support;

fn say(store: &mut Store, user: &str, input: Input, now: i64) -> engine::Step {
    let content = support::shipped();
    store.turn("terminal", user, "en", now, |s| engine::step(content, s, &input, now)).expect("turn").1
}

fn text(t: &str) -> Input {
    Input::Text(t.to_string())
}

#[test]
fn forget_leaves_no_row_that_names_the_user() {
    let mut store = Store::open_in_memory().unwrap();
    for (i, t) in ["Financing", "Uganda", "Mining", "Small (10 to 49 people)", "how do I bake bread"].into_iter().enumerate() {
        say(&mut store, "u1", text(t), i as i64);
    }
    say(&mut store, "u1", Input::Command { name: "subscribe".into(), args: String::new() }, 10);
    say(&mut store, "u1", text("All topics"), 10);
    say(&mut store, "u1", text("Yes, subscribe"), 10);
    say(&mut store, "u2", text("what is empretec"), 11);
    let user = store.user_id("terminal", "u1", 12).unwrap();
    let other = store.user_id("terminal", "u2", 12).unwrap();
    assert_eq!(store.subscription(user).unwrap(), Some((true, "financing,services,linkages,training".to_string())));
    // The unanswered question gets a staff history line and a staff-group post.
    let question = store.inquiries(10).unwrap().into_iter().find(|r| r.text == "how do I bake bread").unwrap().id;
    store
        .inquiry_event(question, "staff 1", "staff_reply", "Try a microfinance bank", Some(sme_advisor::desk::Status::AnsweredByStaff), 10)
        .unwrap();
    store.record_handoff_post(-100, 5, question).unwrap();
    // user, profile, session, subscription, three inquiries (the intent, the recommendation, the
    // unanswered question), the history line and the post
    assert_eq!(store.rows_for_user(user).unwrap(), 9);
    say(&mut store, "u1", Input::Command { name: "forget".into(), args: String::new() }, 13);
    let step = say(&mut store, "u1", text("Yes, delete my data"), 14);
    assert!(step.effects.contains(&engine::Effect::Forget));
    assert_eq!(store.rows_for_user(user).unwrap(), 0);
    assert_eq!(store.rows_for_user(other).unwrap(), 4, "the other user's data stays: user, profile, session, inquiry");
    say(&mut store, "u1", text("hello"), 15);
    let fresh = store.user_id("terminal", "u1", 16).unwrap();
    assert_ne!(fresh, user, "a returning user starts with a new internal id");
    assert_eq!(store.session(fresh, "en").unwrap().profile, Default::default());
}

#[test]
fn a_turn_saves_session_profile_and_inquiries_together() {
    let dir = std::env::temp_dir().join(format!("sme-advisor-store-{}", std::process::id()));
    let path = dir.join("nested/db.sqlite3");
    {
        let mut store = Store::open(&path).unwrap();
        say(&mut store, "u1", text("Financing"), 2);
        say(&mut store, "u1", text("Ugnda"), 3);
        say(&mut store, "u1", text("uganda business linkage programme"), 4);
    }
    // Reopening runs no migration twice and finds everything.
    let mut store = Store::open(&path).unwrap();
    let user = store.user_id("terminal", "u1", 5).unwrap();
    let session = store.session(user, "en").unwrap();
    assert_eq!(session.profile.country.as_deref(), Some("uganda"));
    assert_eq!(session.profile.needs, vec!["credit".to_string()]);
    let inquiries = store.inquiries(10).unwrap();
    assert_eq!(inquiries.len(), 2, "{inquiries:?}");
    assert_eq!(inquiries[0].text, "uganda business linkage programme");
    assert_eq!(inquiries[0].country.as_deref(), Some("uganda"));
    assert!(inquiries[0].answered);
    assert_eq!(inquiries[1].matched, "intent:financing");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failed_turn_changes_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    say(&mut store, "u1", text("Financing"), 2);
    let user = store.user_id("terminal", "u1", 2).unwrap();
    let before = store.session(user, "en").unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.turn("terminal", "u1", "en", 3, |_| panic!("the engine never panics, but the store must not depend on it"));
    }));
    assert!(result.is_err());
    assert_eq!(store.session(user, "en").unwrap(), before);
}

#[test]
fn a_session_from_another_version_starts_afresh_but_keeps_the_profile() {
    let mut store = Store::open_in_memory().unwrap();
    say(&mut store, "u1", text("Financing"), 2);
    say(&mut store, "u1", text("Kenya"), 3);
    let user = store.user_id("terminal", "u1", 3).unwrap();
    let mut session = store.session(user, "en").unwrap();
    assert!(session.at.is_some());
    session.version = SESSION_VERSION + 1;
    store.turn("terminal", "u1", "en", 4, |_| engine::Step { session: session.clone(), replies: vec![], effects: vec![] }).unwrap();
    let reloaded = store.session(user, "en").unwrap();
    assert!(reloaded.at.is_none(), "a session of another version is not trusted");
    assert_eq!(reloaded.profile.country.as_deref(), Some("kenya"));
}

#[test]
fn quarantine_holds_an_update_aside_retry_puts_it_back_and_forget_removes_it() {
    use sme_advisor::store::IncomingUpdate;
    let mut store = Store::open_in_memory().unwrap();
    let update = |id: i64, chat: i64| IncomingUpdate { update_id: id, chat_id: chat, payload: format!("{{\"update_id\":{id}}}") };
    store.record_updates(&[update(1, 77), update(2, 88)], 100).unwrap();
    assert_eq!(store.begin_attempt(1).unwrap(), Some(1));
    assert_eq!(store.begin_attempt(1).unwrap(), Some(2));
    assert!(store.quarantine_update(1, "panic: boom", &[], 101).unwrap());
    assert!(!store.quarantine_update(1, "again", &[], 102).unwrap(), "only a pending update is quarantined");
    assert_eq!(store.begin_attempt(1).unwrap(), None, "a quarantined update is not pending");
    let listed = store.quarantined().unwrap();
    assert_eq!((listed[0].update_id, listed[0].chat_id, listed[0].attempts, listed[0].error.as_str()), (1, 77, 2, "panic: boom"));
    assert_eq!(store.pending_updates().unwrap().iter().map(|u| u.update_id).collect::<Vec<_>>(), vec![2]);
    assert!(store.retry_quarantined(1).unwrap());
    assert!(!store.retry_quarantined(1).unwrap());
    let back = store.take_retry_requests().unwrap();
    assert_eq!((back[0].update_id, back[0].payload.as_str()), (1, "{\"update_id\":1}"));
    assert!(store.take_retry_requests().unwrap().is_empty(), "a retry request is taken once");
    assert_eq!(store.begin_attempt(1).unwrap(), Some(1), "attempts start again");
    // /forget of the user whose private chat it is removes their quarantined updates.
    assert!(store.quarantine_update(1, "panic: again", &[], 103).unwrap());
    let content = support::shipped();
    for (i, t) in ["/forget", "Yes, delete my data"].into_iter().enumerate() {
        let input = if i == 0 { Input::Command { name: "forget".into(), args: String::new() } } else { text(t) };
        store.turn("telegram", "77", "en", 104, |s| engine::step(content, s, &input, 104)).unwrap();
    }
    assert_eq!(store.quarantined_count().unwrap(), 0);
}

#[test]
fn begin_update_counts_the_attempt_and_returns_the_update_until_it_is_done() {
    use sme_advisor::store::IncomingUpdate;
    let mut store = Store::open_in_memory().unwrap();
    let update = IncomingUpdate { update_id: 5, chat_id: 42, payload: "{\"update_id\":5}".into() };
    store.record_updates(std::slice::from_ref(&update), 100).unwrap();
    assert_eq!(store.begin_update(5).unwrap(), Some((1, update.clone())));
    assert_eq!(store.begin_update(5).unwrap(), Some((2, update)), "every start counts");
    assert_eq!(store.begin_attempt(5).unwrap(), Some(3), "the same count as begin_attempt");
    assert!(store.finish_update(5, &[], 101).unwrap());
    assert_eq!(store.begin_update(5).unwrap(), None, "a handled update is not begun again");
    assert_eq!(store.begin_update(6).unwrap(), None, "nor an unknown one");
}

#[test]
fn outbox_rows_done_together_leave_the_others_in_order() {
    use sme_advisor::store::{IncomingUpdate, Outgoing};
    let mut store = Store::open_in_memory().unwrap();
    store.record_updates(&[IncomingUpdate { update_id: 1, chat_id: 7, payload: "{}".into() }], 100).unwrap();
    let rows: Vec<Outgoing> =
        [7, 7, 8, 9, 7].iter().enumerate().map(|(i, &chat)| Outgoing { chat_id: chat, payload: format!("m{i}") }).collect();
    assert!(store.finish_update(1, &rows, 100).unwrap());
    assert_eq!(store.outbox_len().unwrap(), 5);
    let heads = store.outbox_heads(0).unwrap();
    assert_eq!(heads.iter().map(|h| h.chat_id).collect::<Vec<_>>(), vec![7, 8, 9]);
    // Chat 7's first and chat 8's only message delivered together.
    let done: Vec<i64> = heads.iter().filter(|h| h.chat_id != 9).map(|h| h.id).collect();
    store.outbox_done_many(&done).unwrap();
    store.outbox_done_many(&[]).unwrap();
    assert_eq!(store.outbox_len().unwrap(), 3);
    let next = store.outbox_head_of(7, 0).unwrap().expect("chat 7 has two more");
    assert_eq!(store.outbox_payload(next.id, 0).unwrap().as_deref(), Some("m1"));
    assert!(store.outbox_head_of(8, 0).unwrap().is_none());
    assert!(store.outbox_contains(heads[2].id).unwrap(), "chat 9's message is still there");
}

#[test]
fn migration_8_rebuilds_tables_with_checks_and_keeps_every_row_and_reference() {
    use sme_advisor::broadcast::Status as CallStatus;
    use sme_advisor::desk::{Role, Status};
    let dir = std::env::temp_dir().join(format!("sme-advisor-mig8-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("db.sqlite3");
    let question;
    {
        let mut store = Store::open(&db).unwrap();
        say(&mut store, "u1", text("who can lend to a small bakery"), 10);
        question = store.inquiries(10).unwrap()[0].id;
        store.inquiry_event(question, "staff 1", "taken", "", Some(Status::AnsweredByStaff), 11).unwrap();
        store.grant("telegram", "77", Role::Agency, "test", 12).unwrap();
        let call = store.create_broadcast("{}", "test", 13).unwrap();
        store.schedule_broadcast(call, 14, None).unwrap();
    }
    // Run migration 8 again over the data, as on a database that version 7 left.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 7).unwrap();
    drop(conn);
    let store = Store::open_with(&db, sme_advisor::store::Migrate::Yes).unwrap();
    let row = store.inquiry(question).unwrap().expect("the inquiry survives");
    assert_eq!(row.status, Status::AnsweredByStaff);
    assert_eq!(store.events(question).unwrap().len(), 1, "its history still points at it");
    assert_eq!(store.role_grants("telegram").unwrap()[0].role, Role::Agency);
    assert_eq!(store.broadcasts().unwrap()[0].status, CallStatus::Scheduled);
    drop(store);
    // The database itself refuses a value no enum has, and references still cascade.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    for sql in [
        "UPDATE inquiries SET status = 'maybe'",
        "UPDATE inquiries SET kind = 'gossip'",
        "INSERT INTO roles VALUES ('telegram', '1', 'owner', 'x', 0)",
        "UPDATE broadcasts SET status = 'paused'",
    ] {
        assert!(conn.execute(sql, []).is_err(), "the database accepted: {sql}");
    }
    conn.execute("DELETE FROM inquiries", []).unwrap();
    let events: i64 = conn.query_row("SELECT count(*) FROM inquiry_events", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 0, "deleting an inquiry still deletes its history");
}

#[test]
fn the_log_is_copied_by_a_checkpointer_of_its_own_not_inside_a_turn() {
    let dir = std::env::temp_dir().join(format!("sme-advisor-checkpoint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("db.sqlite3");
    let mut store = Store::open(&path).unwrap();
    let checkpointer = store.checkpoint_in_background().unwrap().expect("a file has a log to copy");
    assert_eq!(store.autocheckpoint_pages().unwrap(), sme_advisor::store::WAL_BACKSTOP_PAGES, "turns copy the log only past the backstop");
    for (i, t) in ["Financing", "Uganda", "Mining", "Small (10 to 49 people)"].into_iter().enumerate() {
        say(&mut store, "u1", text(t), i as i64);
    }
    let (log, copied) = checkpointer.run().unwrap();
    assert!(log > 0, "the turns are in the log");
    assert_eq!(copied, log, "with no reader in the way, all of it is copied");
    // Nothing new: nothing to copy, and the next turn writes the log from its start again.
    say(&mut store, "u1", text("hello"), 9);
    let (again, _) = checkpointer.run().unwrap();
    assert!(again < log, "the log restarted after the copy ({again} frames, before {log})");
    drop(store);
    drop(checkpointer);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(Store::open_in_memory().unwrap().checkpoint_in_background().unwrap().is_none(), "no log in memory");
}
