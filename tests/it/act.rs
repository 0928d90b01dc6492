//! The authorisation matrix over the act layer: every role × every desk, agency and admin request
//! (forged buttons included), on an in-memory store, with no network.

use std::sync::Mutex;

use sme_advisor::act::{self, Actor, Ctx, Notice, Outcome, To};
use sme_advisor::broadcast::{Call, Status as CallStatus};
use sme_advisor::desk::{self, Period, Request, Role, Roles, Status};
use sme_advisor::engine::{self, Input};
use sme_advisor::store::Store;

use crate::support;

const NOW: i64 = 1_795_000_000;
const USER: &str = "4242";

/// Who may do what, written out here rather than read from `Request::role`, so the two can disagree.
fn allowed(request: &Request, roles: Roles) -> bool {
    let staff = roles.staff || roles.admin;
    let agency = roles.agency || roles.admin;
    match request {
        Request::Inbox { .. }
        | Request::Show { .. }
        | Request::Resolve { .. }
        | Request::Take { .. }
        | Request::Reply { .. }
        | Request::Stats { .. }
        | Request::Export { .. }
        | Request::Learn { .. } => staff,
        Request::BroadcastSend { .. } | Request::BroadcastCancel { .. } => agency,
        Request::Grant { .. } | Request::Revoke { .. } | Request::Roles | Request::Reload => roles.admin,
    }
}

/// A store with one user's logged question, a staff grant and a draft call.
fn seeded() -> (Mutex<Store>, i64, i64) {
    let content = support::shipped();
    let mut store = Store::open_in_memory().unwrap();
    let question = Input::Text("how can a small bakery get a bank loan for an oven".into());
    store.turn(act::CHANNEL, USER, "en", NOW, |session| engine::step(content, session, &question, NOW)).unwrap();
    let inquiry = store.inquiries(10).unwrap().first().expect("the question was logged").id;
    store.grant(act::CHANNEL, "555", Role::Staff, "test", NOW).unwrap();
    let call = Call {
        provider: "A fund".into(),
        countries: vec!["uganda".into()],
        sectors: vec!["any".into()],
        topics: vec!["financing".into()],
        deadline: "2099-01-31".into(),
        link: None,
        texts: Default::default(),
    };
    let draft = store.create_broadcast(&serde_json::to_string(&call).unwrap(), "test", NOW).unwrap();
    (Mutex::new(store), inquiry, draft)
}

/// What the store holds that a request could change.
fn fingerprint(store: &Mutex<Store>) -> String {
    let store = store.lock().unwrap();
    let rows = store.inquiries(100).unwrap();
    let statuses: Vec<String> = rows.iter().map(|r| format!("{}:{}:{:?}", r.id, r.status, r.taken_by)).collect();
    let events: usize = rows.iter().map(|r| store.events(r.id).unwrap().len()).sum();
    let roles: Vec<String> = store.role_grants(act::CHANNEL).unwrap().iter().map(|g| format!("{}:{}", g.external_id, g.role)).collect();
    let calls: Vec<String> = store.broadcasts().unwrap().iter().map(|b| format!("{}:{}", b.id, b.status)).collect();
    let learned = store.learned_examples().unwrap().len();
    format!("{statuses:?} events={events} roles={roles:?} calls={calls:?} learned={learned}")
}

fn requests(inquiry: i64, draft: i64) -> Vec<Request> {
    let period = Period::parse("7d", NOW).unwrap();
    vec![
        Request::Inbox { page: 0 },
        Request::Show { id: inquiry },
        Request::Resolve { id: inquiry },
        Request::Take { id: inquiry },
        Request::Reply { id: inquiry, text: "Try the local EMPRETEC centre.".into() },
        Request::Stats { period: period.clone() },
        Request::Export { period },
        Request::Learn { inquiry, entry: "ifc-linkages".into() },
        Request::Grant { user: "777".into(), role: Role::Agency },
        Request::Revoke { user: "555".into(), role: Role::Staff },
        Request::Roles,
        Request::Reload,
        Request::BroadcastSend { id: draft, delay_hours: 0 },
        Request::BroadcastCancel { id: draft },
    ]
}

fn run(store: &Mutex<Store>, roles: Roles, request: Request) -> Outcome {
    let root = support::root();
    let (dialogs, knowledge) = (root.join("dialogs"), root.join("knowledge"));
    let ctx = Ctx {
        store,
        content: support::shipped(),
        admins: &[],
        dialogs_dir: &dialogs,
        knowledge_dir: &knowledge,
        broadcast_rate: 25.0,
        now: NOW,
    };
    let actor = Actor { id: "31337".into(), roles, lang: "en".into(), chat: None };
    act::desk::run(&ctx, &actor, request).expect("an act never fails on a valid store")
}

fn requester_text(outcome: &Outcome) -> String {
    outcome.requester_texts().join("\n")
}

#[test]
fn every_role_may_do_exactly_what_the_table_says_and_a_refusal_changes_nothing() {
    let content = support::shipped();
    let forbidden = content.message("desk_forbidden", "en", &[]);
    let roles = [
        ("no role", Roles::default()),
        ("staff", Roles { staff: true, ..Roles::default() }),
        ("agency", Roles { agency: true, ..Roles::default() }),
        ("admin", Roles { admin: true, ..Roles::default() }),
    ];
    let (_, inquiry, draft) = seeded();
    let mut checked = 0;
    for (name, role) in roles {
        for request in requests(inquiry, draft) {
            let (store, _, _) = seeded();
            let before = fingerprint(&store);
            let may = allowed(&request, role);
            assert_eq!(may, Roles::allows(role, request.role()), "{name} / {request:?}: the table and Request::role disagree");
            let outcome = run(&store, role, request.clone());
            let text = requester_text(&outcome);
            if may {
                assert!(!text.contains(&forbidden), "{name} may {request:?} but was refused: {text}");
                assert!(!outcome.notices.is_empty(), "{name} / {request:?}: no answer at all");
            } else {
                assert!(outcome.refused, "{name} / {request:?} must be refused");
                assert_eq!(text, forbidden, "{name} / {request:?}");
                assert_eq!(outcome.notices.len(), 1, "{name} / {request:?}: a refusal tells nobody else");
                assert_eq!(fingerprint(&store), before, "{name} / {request:?}: a refused request changed the store");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * 14);
}

#[test]
fn allowed_requests_change_what_they_say() {
    let staff = Roles { staff: true, ..Roles::default() };
    let admin = Roles { admin: true, ..Roles::default() };
    let agency = Roles { agency: true, ..Roles::default() };

    let (store, inquiry, draft) = seeded();
    let outcome = run(&store, staff, Request::Reply { id: inquiry, text: "Ask the EMPRETEC centre.".into() });
    assert!(
        outcome.notices.iter().any(|n| matches!(n, Notice::Say { to: To::User(_), reply, .. } if reply.text.contains("EMPRETEC centre"))),
        "the reply goes to the user: {outcome:?}"
    );
    let row = store.lock().unwrap().inquiry(inquiry).unwrap().unwrap();
    assert_eq!(row.status, Status::AnsweredByStaff);

    let outcome = run(&store, staff, Request::Resolve { id: inquiry });
    assert!(!outcome.refused);
    assert_eq!(store.lock().unwrap().inquiry(inquiry).unwrap().unwrap().status, Status::Resolved);

    let outcome = run(&store, staff, Request::Show { id: 999_999 });
    assert!(outcome.refused, "an unknown inquiry is refused, not invented");

    run(&store, admin, Request::Grant { user: "777".into(), role: Role::Agency });
    let grants = store.lock().unwrap().role_grants(act::CHANNEL).unwrap();
    assert!(grants.iter().any(|g| g.external_id == "777" && g.role == Role::Agency && g.granted_by == "31337"), "{grants:?}");
    let again = run(&store, admin, Request::Grant { user: "777".into(), role: Role::Agency });
    assert!(again.refused, "granting a role twice changes nothing");

    let outcome = run(&store, agency, Request::BroadcastSend { id: draft, delay_hours: 2 });
    assert!(!outcome.refused);
    let row = store.lock().unwrap().broadcast(draft).unwrap().unwrap();
    assert_eq!((row.status, row.send_at), (CallStatus::Scheduled, Some(NOW + 7200)));
    let outcome = run(&store, agency, Request::BroadcastCancel { id: draft });
    assert!(!outcome.refused);
    assert!(run(&store, agency, Request::BroadcastCancel { id: draft }).refused, "a cancelled call cannot be cancelled again");

    let export = run(&store, staff, Request::Export { period: Period::parse("7d", NOW).unwrap() });
    assert!(
        export.notices.iter().any(|n| matches!(n, Notice::Document { csv, .. } if csv.lines().count() == 2)),
        "the export holds the header and the one inquiry: {export:?}"
    );
    // Statistics: the text, then the daily chart as a PNG for the requester, captioned in their language.
    let stats = run(&store, staff, Request::Stats { period: Period::parse("7d", NOW).unwrap() });
    assert!(matches!(stats.notices.first(), Some(Notice::Say { to: To::Requester, .. })), "{stats:?}");
    let Some(Notice::Photo { file_name, caption, png }) = stats.notices.last() else { panic!("no chart: {stats:?}") };
    assert_eq!((file_name.as_str(), caption.as_str()), ("stats-7d.png", "Inquiries per day and the share of free questions answered, 7d."));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let empty = run(&store, staff, Request::Stats { period: Period::parse("2020-01-01..2020-01-02", NOW).unwrap() });
    assert!(!empty.notices.iter().any(|n| matches!(n, Notice::Photo { .. })), "no chart of an empty period");
}

#[test]
fn forged_and_replayed_buttons_grant_nothing() {
    // Buttons that are not the desk's, or malformed, do not parse at all.
    for data in
        ["k:grant:777", "k:res:-1", "k:res:7:x", "k:learn:7:", "k:blater:3:0", "k:inbox", "k:", "s:menu", "k:show:99999999999999999999"]
    {
        assert_eq!(desk::parse_button(data), None, "{data}");
    }
    // A well-formed button pressed by someone without the role is refused and changes nothing.
    let (store, inquiry, draft) = seeded();
    for data in [format!("k:res:{inquiry}"), format!("k:take:{inquiry}"), format!("k:bsend:{draft}"), format!("k:bcancel:{draft}")] {
        let request = desk::parse_button(&data).expect("a valid button");
        let before = fingerprint(&store);
        let outcome = run(&store, Roles::default(), request);
        assert!(outcome.refused, "{data}");
        assert_eq!(fingerprint(&store), before, "{data}");
    }
}
