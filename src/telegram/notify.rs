//! The act layer's notices as Telegram messages: the thin mapping from "tell whom what" to the outbox.

use crate::act::{CHANNEL, Notice, To};
use crate::engine::Timestamp;
use crate::store::{Outgoing, Store, StoreError};

use super::Out;
use super::limits::Class;
use super::render;

/// The outbox rows for notices. Notices to the requester go to `requester_chat` (dropped when it is
/// `None`: a front end other than Telegram shows them itself); to a user, to their Telegram chat;
/// to a staff thread, as a reply under the inquiry's handoff post in the staff group.
pub fn outgoing(store: &Store, requester_chat: Option<i64>, notices: &[Notice]) -> Result<Vec<Outgoing>, StoreError> {
    let mut out = Vec::new();
    for notice in notices {
        match notice {
            Notice::Say { to, reply, .. } => {
                let messages: Vec<render::Message> = render::render(reply).into_iter().filter(|m| !m.text.is_empty()).collect();
                let (chat, reply_to, class) = match to {
                    To::Requester => match requester_chat {
                        Some(chat) => (chat, None, None),
                        None => continue,
                    },
                    To::User(user) => match store.external_of(*user)? {
                        Some((channel, external)) if channel == CHANNEL => match external.parse::<i64>() {
                            Ok(chat) => (chat, None, Some(Class::Relay)),
                            Err(_) => continue,
                        },
                        _ => continue,
                    },
                    To::StaffThread(inquiry) => match store.post_of_inquiry(*inquiry)? {
                        Some((chat, message_id)) => (chat, i32::try_from(message_id).ok(), None),
                        None => continue,
                    },
                };
                for message in messages {
                    out.push(Out::Send { chat_id: chat, message, reply_to, post_of: None, report_of: None, class }.queue(chat));
                }
            }
            Notice::Document { file_name, caption, csv } => {
                if let Some(chat) = requester_chat {
                    let op = Out::Document { chat_id: chat, file_name: file_name.clone(), caption: caption.clone(), content: csv.clone() };
                    out.push(op.queue(chat));
                }
            }
            Notice::Photo { file_name, caption, png } => {
                if let Some(chat) = requester_chat {
                    let op = Out::Photo { chat_id: chat, file_name: file_name.clone(), caption: caption.clone(), png: png.clone() };
                    out.push(op.queue(chat));
                }
            }
        }
    }
    Ok(out)
}

/// Queues the notices meant for Telegram users and the staff group, for a front end that shows the
/// requester's own notices itself (the web desk, the command line).
pub fn queue(store: &mut Store, notices: &[Notice], now: Timestamp) -> Result<usize, StoreError> {
    let rows = outgoing(store, None, notices)?;
    store.queue(&rows, now)?;
    Ok(rows.len())
}
