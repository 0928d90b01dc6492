//! Sign-in links to the web desk: made here so that every front end (the command line, Telegram's
//! `/web`, the desk itself) makes them the same way, for users who hold a role at that moment.

use sha2::{Digest, Sha256};

use crate::desk::Roles;
use crate::engine::Timestamp;
use crate::store::Store;

use super::CHANNEL;

/// A new random token: 32 bytes from the operating system, as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is stored instead of a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether a user holds any role (staff, agency or admin): the web desk is for them.
pub fn holds_any(roles: Roles) -> bool {
    roles.staff || roles.agency || roles.admin
}

/// A one-time sign-in link for a Telegram user who holds a role now; `None` when they hold none.
pub fn login_link(store: &mut Store, admins: &[i64], base: &str, user_id: &str, now: Timestamp) -> anyhow::Result<Option<String>> {
    let user_id = user_id.trim();
    if user_id.is_empty() || !user_id.chars().all(|c| c.is_ascii_digit()) || user_id.len() > 20 {
        anyhow::bail!("`{user_id}` is not a Telegram user id (a number such as 123456789)");
    }
    if !holds_any(super::roles_of(store, admins, user_id)?) {
        return Ok(None);
    }
    let token = random_token();
    store.web_create_login_link(&token_hash(&token), CHANNEL, user_id, now)?;
    store.audit(&format!("{CHANNEL} {user_id}"), "login_link", user_id, "", now)?;
    Ok(Some(format!("{}/login/{token}", base.trim_end_matches('/'))))
}
