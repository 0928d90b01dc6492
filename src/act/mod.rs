//! The act layer: runs decided desk and broadcast requests on the store and says whom to tell what.
//!
//! The decide parts ([`crate::desk`], [`crate::broadcast`]) parse, authorise and build views
//! without I/O. The functions here take a decided request, check the requester's role through the
//! same table ([`crate::desk::Request::role`]), change the store, and return an [`Outcome`]:
//! notices addressed to the requester, to a user, or to the staff thread of an inquiry, and new
//! content to swap in when staff taught the matcher. Every front end (Telegram, the command line,
//! the web desk) calls these functions and only renders the notices, so each action exists once.

pub mod broadcast;
pub mod desk;
pub mod signin;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use crate::content::Content;
use crate::desk::{Role, Roles};
use crate::engine::{Reply, Timestamp, UserId};
use crate::store::{Store, StoreError};

/// The channel whose users hold roles: staff, agencies and admins are Telegram users (the web
/// desk signs them in through Telegram), and `ADMIN_IDS` are Telegram user ids.
pub const CHANNEL: &str = "telegram";

/// Who asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The requester's user id on [`CHANNEL`], or a name such as "command line" for the operator.
    pub id: String,
    pub roles: Roles,
    /// The language the requester reads notices in.
    pub lang: String,
    /// The Telegram chat the request came from, where the progress of a call it starts is
    /// reported; `None` from the command line and the web desk.
    pub chat: Option<i64>,
}

impl Actor {
    /// A Telegram user with the roles they hold now.
    pub fn telegram(store: &Store, admins: &[i64], user_id: &str, lang: &str) -> Result<Actor, StoreError> {
        Ok(Actor { id: user_id.to_string(), roles: roles_of(store, admins, user_id)?, lang: lang.to_string(), chat: None })
    }

    /// The operator at the command line: whoever can open the database may do everything.
    pub fn operator(lang: &str) -> Actor {
        Actor {
            id: "command line".to_string(),
            roles: Roles { staff: true, agency: true, admin: true },
            lang: lang.to_string(),
            chat: None,
        }
    }

    /// How the requester appears in an inquiry's history and in `granted_by`.
    pub fn label(&self) -> String {
        if self.id.chars().all(|c| c.is_ascii_digit()) { format!("staff {}", self.id) } else { self.id.clone() }
    }

    pub fn may(&self, role: Role) -> bool {
        self.roles.allows(role)
    }
}

/// The roles a Telegram user holds now: admins by `ADMIN_IDS`, the others by grants in the store.
pub fn roles_of(store: &Store, admins: &[i64], user_id: &str) -> Result<Roles, StoreError> {
    let admin = admins.iter().any(|a| a.to_string() == user_id);
    let names = store.roles_of(CHANNEL, user_id)?;
    Ok(Roles::from_names(&names, admin))
}

/// To whom a notice goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum To {
    /// Whoever made the request, on the front end they used.
    Requester,
    /// A user of the advisor, on the channel they talk to it through.
    User(UserId),
    /// The staff group, under the post of this inquiry's handoff.
    StaffThread(i64),
}

/// Something to tell someone.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    Say {
        to: To,
        lang: String,
        reply: Reply,
    },
    /// A CSV file for the requester.
    Document {
        file_name: String,
        caption: String,
        csv: String,
    },
    /// A picture for the requester (a chart), as PNG bytes, with a plain-text caption.
    Photo {
        file_name: String,
        caption: String,
        png: Vec<u8>,
    },
}

/// What an action did: what to tell whom, and new content to swap in (after a reload or when
/// staff attached an example question).
#[derive(Debug, Default)]
pub struct Outcome {
    pub notices: Vec<Notice>,
    pub content: Option<Content>,
    /// The request changed nothing: not allowed, not found, or not possible in the object's state.
    pub refused: bool,
}

impl Outcome {
    /// Refuses the request with a message to the requester.
    pub fn refuse(&mut self, ctx: &Ctx<'_>, lang: &str, key: &str, params: &[(&str, &str)]) {
        self.refused = true;
        self.say(ctx, To::Requester, lang, key, params);
    }

    pub fn say(&mut self, ctx: &Ctx<'_>, to: To, lang: &str, key: &str, params: &[(&str, &str)]) {
        let reply = Reply { title: None, text: ctx.content.message(key, lang, params), buttons: Vec::new() };
        self.notices.push(Notice::Say { to, lang: lang.to_string(), reply });
    }

    pub fn reply(&mut self, to: To, lang: &str, reply: Reply) {
        self.notices.push(Notice::Say { to, lang: lang.to_string(), reply });
    }

    /// The texts addressed to the requester, for front ends that print them.
    pub fn requester_texts(&self) -> Vec<String> {
        self.notices
            .iter()
            .filter_map(|n| match n {
                Notice::Say { to: To::Requester, reply, .. } => Some(reply.text.clone()),
                _ => None,
            })
            .collect()
    }
}

/// What the act functions need, borrowed from the front end that calls them.
pub struct Ctx<'a> {
    pub store: &'a Mutex<Store>,
    pub content: &'a Content,
    /// `ADMIN_IDS`.
    pub admins: &'a [i64],
    /// The content folders, read again to check an example question or to reload.
    pub dialogs_dir: &'a Path,
    pub knowledge_dir: &'a Path,
    /// Programme calls go out at this many messages a second (for progress estimates).
    pub broadcast_rate: f64,
    pub now: Timestamp,
}

impl Ctx<'_> {
    /// The store, also after a panic elsewhere poisoned the lock (every write is one transaction).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}
