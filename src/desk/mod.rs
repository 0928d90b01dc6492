//! The staff desk, pure part: staff and admin commands and buttons, who may use them, and their texts.
//!
//! Like the engine this module does no I/O: it parses a command or button into a [`Request`],
//! says which role it needs ([`Request::role`]), and renders rows from the store into [`Reply`]
//! values using the content's messages. The Telegram layer checks the role on every request,
//! runs the store operations and queues the replies. Button data of the desk starts with `k:`
//! and names the object it acts on, so a forged or replayed button grants nothing: the role is
//! checked again when it is pressed.

mod report;

pub use crate::dates::{Period, format_time};
pub use report::{Stats, to_csv, to_json};

use crate::content::Content;
use crate::engine::{Button, Reply, Timestamp};
use crate::engine::{InquiryKind, UserId};

/// A logged inquiry as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct InquiryRow {
    pub id: i64,
    pub user: Option<UserId>,
    pub at: Timestamp,
    pub lang: String,
    pub kind: InquiryKind,
    pub text: String,
    pub matched: String,
    pub confidence: f64,
    pub answered: bool,
    pub status: Status,
    pub topic: Option<String>,
    pub country: Option<String>,
    pub sector: Option<String>,
    pub taken_by: Option<String>,
}

/// A role granted to a user of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleGrant {
    pub external_id: String,
    pub role: Role,
    pub granted_by: String,
    pub granted_at: Timestamp,
}

/// One line of an inquiry's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: Timestamp,
    pub actor: String,
    pub kind: String,
    pub text: String,
}

/// Inquiries per inbox page.
pub const PAGE: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Staff,
    Agency,
    Admin,
}

/// Where an inquiry stands. Stored by name; the database refuses any other value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// A question the advisor could not answer well, waiting for staff to look.
    New,
    /// A handoff: the user asked for a person.
    NeedsHuman,
    /// Answered by the advisor.
    Answered,
    AnsweredByStaff,
    Resolved,
}

impl Status {
    pub const ALL: [Status; 5] = [Status::New, Status::NeedsHuman, Status::Answered, Status::AnsweredByStaff, Status::Resolved];

    pub fn name(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::NeedsHuman => "needs_human",
            Status::Answered => "answered",
            Status::AnsweredByStaff => "answered_by_staff",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Still waiting for staff: the inbox shows these.
    pub fn is_open(self) -> bool {
        match self {
            Status::New | Status::NeedsHuman => true,
            Status::Answered | Status::AnsweredByStaff | Status::Resolved => false,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Agency => "agency",
            Role::Admin => "admin",
        }
    }

    /// A role by its name, as content commands and the store write it.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "staff" => Some(Role::Staff),
            "agency" => Some(Role::Agency),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The roles an admin may grant.
    pub fn grantable(name: &str) -> Option<Role> {
        match name {
            "staff" => Some(Role::Staff),
            "agency" => Some(Role::Agency),
            _ => None,
        }
    }
}

/// What a user may do: admins may do everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    pub staff: bool,
    pub agency: bool,
    pub admin: bool,
}

impl Roles {
    pub fn from_names(names: &[String], admin: bool) -> Roles {
        Roles { staff: names.iter().any(|n| n == "staff"), agency: names.iter().any(|n| n == "agency"), admin }
    }

    pub fn allows(self, role: Role) -> bool {
        self.admin
            || match role {
                Role::Staff => self.staff,
                Role::Agency => self.agency,
                Role::Admin => false,
            }
    }
}

/// A staff or admin request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Inbox {
        page: usize,
    },
    Show {
        id: i64,
    },
    Resolve {
        id: i64,
    },
    Take {
        id: i64,
    },
    Stats {
        period: Period,
    },
    Export {
        period: Period,
    },
    Learn {
        inquiry: i64,
        entry: String,
    },
    Grant {
        user: String,
        role: Role,
    },
    Revoke {
        user: String,
        role: Role,
    },
    Roles,
    /// Read `dialogs/` and `knowledge/` again; keep the running content if they do not check.
    Reload,
    /// Send a drafted programme call now, or in this many hours.
    BroadcastSend {
        id: i64,
        delay_hours: i64,
    },
    BroadcastCancel {
        id: i64,
    },
    /// A staff member's answer to the user of an inquiry.
    Reply {
        id: i64,
        text: String,
    },
}

impl Request {
    /// The role each request needs: one arm per request, no wildcard, so a new request must say.
    pub fn role(&self) -> Role {
        match self {
            Request::Inbox { .. } => Role::Staff,
            Request::Show { .. } => Role::Staff,
            Request::Resolve { .. } => Role::Staff,
            Request::Take { .. } => Role::Staff,
            Request::Reply { .. } => Role::Staff,
            Request::Stats { .. } => Role::Staff,
            Request::Export { .. } => Role::Staff,
            Request::Learn { .. } => Role::Staff,
            Request::BroadcastSend { .. } => Role::Agency,
            Request::BroadcastCancel { .. } => Role::Agency,
            Request::Grant { .. } => Role::Admin,
            Request::Revoke { .. } => Role::Admin,
            Request::Roles => Role::Admin,
            Request::Reload => Role::Admin,
        }
    }
}

/// A command or button of the desk, or a usage message for a malformed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Request(Request),
    /// The command is the desk's but its arguments are wrong: answer with this usage message,
    /// to those who hold `Role`; others get "this command is for staff".
    Usage(Role, &'static str),
}

/// Parses `/name args`; `None` when the command is not the desk's.
pub fn parse_command(name: &str, args: &str, now: Timestamp) -> Option<Parsed> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let id = |i: usize| words.get(i).and_then(|w| w.trim_start_matches('#').parse::<i64>().ok()).filter(|n| *n > 0);
    let parsed = match name {
        "inbox" => Parsed::Request(Request::Inbox { page: 0 }),
        "inquiry" => id(0).map_or(Parsed::Usage(Role::Staff, "desk_usage_inquiry"), |id| Parsed::Request(Request::Show { id })),
        "resolve" => id(0).map_or(Parsed::Usage(Role::Staff, "desk_usage_resolve"), |id| Parsed::Request(Request::Resolve { id })),
        "stats" | "export" => match Period::parse(words.first().copied().unwrap_or("7d"), now) {
            Ok(period) if words.len() <= 1 => {
                Parsed::Request(if name == "stats" { Request::Stats { period } } else { Request::Export { period } })
            }
            _ => Parsed::Usage(Role::Staff, "desk_usage_period"),
        },
        "learn" => match (id(0), words.get(1)) {
            (Some(inquiry), Some(entry)) if words.len() == 2 => Parsed::Request(Request::Learn { inquiry, entry: entry.to_string() }),
            _ => Parsed::Usage(Role::Staff, "desk_usage_learn"),
        },
        "grant" | "revoke" => {
            let user = words.first().filter(|u| !u.is_empty() && u.chars().all(|c| c.is_ascii_digit()));
            match (user, words.get(1).and_then(|r| Role::grantable(r))) {
                (Some(user), Some(role)) if words.len() == 2 => {
                    let user = user.to_string();
                    Parsed::Request(if name == "grant" { Request::Grant { user, role } } else { Request::Revoke { user, role } })
                }
                _ => Parsed::Usage(Role::Admin, if name == "grant" { "desk_usage_grant" } else { "desk_usage_revoke" }),
            }
        }
        "roles" => Parsed::Request(Request::Roles),
        "reload" => Parsed::Request(Request::Reload),
        _ => return None,
    };
    Some(parsed)
}

/// Parses desk button data (`k:...`); `None` when it is not the desk's or is malformed.
pub fn parse_button(data: &str) -> Option<Request> {
    let mut parts = data.strip_prefix("k:")?.splitn(3, ':');
    let verb = parts.next()?;
    let number = parts.next()?.parse::<i64>().ok().filter(|n| *n >= 0)?;
    let rest = parts.next();
    match (verb, rest) {
        ("inbox", None) => Some(Request::Inbox { page: number as usize }),
        ("show", None) => Some(Request::Show { id: number }),
        ("res", None) => Some(Request::Resolve { id: number }),
        ("take", None) => Some(Request::Take { id: number }),
        ("learn", Some(entry)) if !entry.is_empty() => Some(Request::Learn { inquiry: number, entry: entry.to_string() }),
        ("bsend", None) => Some(Request::BroadcastSend { id: number, delay_hours: 0 }),
        ("blater", Some(hours)) => {
            hours.parse::<i64>().ok().filter(|h| (1..=720).contains(h)).map(|h| Request::BroadcastSend { id: number, delay_hours: h })
        }
        ("bcancel", None) => Some(Request::BroadcastCancel { id: number }),
        _ => None,
    }
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max { one_line } else { format!("{}…", one_line.chars().take(max).collect::<String>()) }
}

fn message(content: &Content, lang: &str, key: &str, params: &[(&str, &str)]) -> Reply {
    Reply { title: None, text: content.message(key, lang, params), buttons: Vec::new() }
}

/// A reply with one message and no buttons.
pub fn say(content: &Content, lang: &str, key: &str, params: &[(&str, &str)]) -> Reply {
    message(content, lang, key, params)
}

/// The inbox: open inquiries, handoffs first, newest first, a page at a time.
pub fn inbox(content: &Content, lang: &str, rows: &[InquiryRow], page: usize) -> Reply {
    if rows.is_empty() {
        return message(content, lang, "desk_inbox_empty", &[]);
    }
    let shown: Vec<&InquiryRow> = rows.iter().skip(page * PAGE).take(PAGE).collect();
    let mut lines = vec![content.message("desk_inbox_title", lang, &[("count", &rows.len().to_string())])];
    let mut buttons = Vec::new();
    for row in &shown {
        let id = row.id.to_string();
        lines.push(content.message(
            "desk_inbox_line",
            lang,
            &[
                ("id", &id),
                ("when", &format_time(row.at)),
                ("kind", row.kind.name()),
                ("status", row.status.name()),
                ("text", &shorten(&row.text, 80)),
            ],
        ));
        buttons.push(Button { label: format!("#{id}"), data: format!("k:show:{id}") });
    }
    if page > 0 {
        buttons.push(Button { label: content.message("desk_button_previous", lang, &[]), data: format!("k:inbox:{}", page - 1) });
    }
    if rows.len() > (page + 1) * PAGE {
        buttons.push(Button { label: content.message("desk_button_next", lang, &[]), data: format!("k:inbox:{}", page + 1) });
    }
    Reply { title: None, text: lines.join("\n\n"), buttons }
}

/// One inquiry in full, with its history and the actions staff can take.
pub fn inquiry(content: &Content, lang: &str, row: &InquiryRow, events: &[Event]) -> Reply {
    let id = row.id.to_string();
    let user = row.user.map_or("-".to_string(), |u| u.0.to_string());
    let confidence = format!("{:.2}", row.confidence);
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut text = content.message(
        "desk_inquiry",
        lang,
        &[
            ("id", &id),
            ("when", &format_time(row.at)),
            ("user", &user),
            ("lang", &row.lang),
            ("kind", row.kind.name()),
            ("status", row.status.name()),
            ("matched", if row.matched.is_empty() { "-" } else { &row.matched }),
            ("confidence", &confidence),
            ("country", &dash(&row.country)),
            ("sector", &dash(&row.sector)),
            ("taken", &dash(&row.taken_by)),
            ("text", &row.text),
        ],
    );
    for event in events {
        text.push('\n');
        text.push_str(&content.message(
            "desk_history_line",
            lang,
            &[("when", &format_time(event.at)), ("actor", &event.actor), ("kind", &event.kind), ("text", &shorten(&event.text, 200))],
        ));
    }
    // How the matcher reads the question today, as `sme-advisor explain` prints it.
    if row.kind == InquiryKind::Question {
        let explanation = content.index.explain(&row.text, &crate::matching::Asker::lang(&row.lang));
        text.push_str("\n\n");
        text.push_str(&content.message("desk_explain", lang, &[("explanation", explanation.trim_end())]));
    }
    let mut buttons = Vec::new();
    if row.status != Status::Resolved {
        buttons.push(Button { label: content.message("desk_button_resolve", lang, &[]), data: format!("k:res:{id}") });
    }
    // A question the bot could not answer well can become an example of an entry it suggested.
    if row.kind == InquiryKind::Question && !row.answered {
        for entry_id in row.matched.split(',').filter_map(|m| m.strip_prefix("entry:")) {
            if let Some(entry) = content.entry(entry_id) {
                let short = &content.entry_text(entry, lang).short;
                buttons.push(Button {
                    label: content.message("desk_button_learn", lang, &[("entry", short)]),
                    data: format!("k:learn:{id}:{entry_id}"),
                });
            }
        }
    }
    Reply { title: None, text, buttons }
}

/// The post a handoff makes in the staff group.
pub fn handoff_post(content: &Content, inquiry_id: i64, user: &str, lang: &str, profile: &str, recent: &[String], question: &str) -> Reply {
    let staff_lang = crate::content::DEFAULT_LANG;
    let recent = if recent.is_empty() { "-".to_string() } else { recent.iter().map(|r| format!("• {r}")).collect::<Vec<_>>().join("\n") };
    let id = inquiry_id.to_string();
    let text = content.message(
        "desk_handoff_post",
        staff_lang,
        &[
            ("id", &id),
            ("user", user),
            ("lang", lang),
            ("profile", if profile.is_empty() { "-" } else { profile }),
            ("recent", &recent),
            ("text", question),
        ],
    );
    let buttons = vec![
        Button { label: content.message("desk_button_take", staff_lang, &[]), data: format!("k:take:{id}") },
        Button { label: content.message("desk_button_resolve", staff_lang, &[]), data: format!("k:res:{id}") },
    ];
    Reply { title: None, text, buttons }
}

pub fn roles(content: &Content, lang: &str, admins: &[i64], grants: &[RoleGrant]) -> Reply {
    let mut lines = vec![content.message("desk_roles_title", lang, &[])];
    for admin in admins {
        lines.push(content.message("desk_role_line", lang, &[("user", &admin.to_string()), ("role", "admin"), ("by", "ADMIN_IDS")]));
    }
    for g in grants {
        lines.push(content.message("desk_role_line", lang, &[("user", &g.external_id), ("role", g.role.name()), ("by", &g.granted_by)]));
    }
    Reply { title: None, text: lines.join("\n"), buttons: Vec::new() }
}

pub fn stats(content: &Content, lang: &str, period: &Period, stats: &Stats) -> Reply {
    let list = |items: &[(String, usize)]| {
        if items.is_empty() { "-".to_string() } else { items.iter().map(|(k, n)| format!("{k} ({n})")).collect::<Vec<_>>().join(", ") }
    };
    let share =
        if stats.questions == 0 { "-".to_string() } else { format!("{:.0}%", 100.0 * stats.answered as f64 / stats.questions as f64) };
    let text = content.message(
        "desk_stats",
        lang,
        &[
            ("period", &period.label),
            ("total", &stats.total.to_string()),
            ("questions", &stats.questions.to_string()),
            ("answered", &share),
            ("handoffs", &stats.handoffs.to_string()),
            ("recommendations", &stats.recommendations.to_string()),
            ("topics", &list(&stats.topics)),
            ("unanswered", &list(&stats.unanswered)),
            ("countries", &list(&stats.countries)),
            ("languages", &list(&stats.languages)),
        ],
    );
    Reply { title: None, text, buttons: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_or_give_usage() {
        let now = 1_795_000_000;
        assert_eq!(parse_command("inquiry", "#12", now), Some(Parsed::Request(Request::Show { id: 12 })));
        assert_eq!(parse_command("inquiry", "twelve", now), Some(Parsed::Usage(Role::Staff, "desk_usage_inquiry")));
        assert_eq!(
            parse_command("grant", "123 staff", now),
            Some(Parsed::Request(Request::Grant { user: "123".into(), role: Role::Staff }))
        );
        assert_eq!(parse_command("grant", "123 admin", now), Some(Parsed::Usage(Role::Admin, "desk_usage_grant")));
        assert_eq!(parse_command("grant", "@bob staff", now), Some(Parsed::Usage(Role::Admin, "desk_usage_grant")));
        assert_eq!(parse_command("stats", "fortnight", now), Some(Parsed::Usage(Role::Staff, "desk_usage_period")));
        assert_eq!(parse_command("menu", "", now), None);
    }

    #[test]
    fn buttons_parse_strictly() {
        assert_eq!(parse_button("k:res:7"), Some(Request::Resolve { id: 7 }));
        assert_eq!(parse_button("k:learn:7:empretec"), Some(Request::Learn { inquiry: 7, entry: "empretec".into() }));
        assert_eq!(parse_button("k:res:-1"), None);
        assert_eq!(parse_button("k:res:7:extra"), None);
        assert_eq!(parse_button("k:grant:1"), None);
        assert_eq!(parse_button("k:blater:3:24"), Some(Request::BroadcastSend { id: 3, delay_hours: 24 }));
        assert_eq!(parse_button("k:blater:3:9999"), None);
        assert_eq!(Request::BroadcastCancel { id: 3 }.role(), Role::Agency);
        assert_eq!(parse_button("s:menu:choose:fin"), None);
    }

    #[test]
    fn admins_may_do_everything_others_what_their_role_allows() {
        let staff = Roles { staff: true, ..Roles::default() };
        let agency = Roles { agency: true, ..Roles::default() };
        let admin = Roles { admin: true, ..Roles::default() };
        assert!(staff.allows(Role::Staff) && !staff.allows(Role::Admin) && !staff.allows(Role::Agency));
        assert!(agency.allows(Role::Agency) && !agency.allows(Role::Staff));
        assert!(admin.allows(Role::Staff) && admin.allows(Role::Agency) && admin.allows(Role::Admin));
        assert!(!Roles::default().allows(Role::Staff));
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(1_795_000_000), "2026-11-18 11:06");
    }
}
