//! Signing in to the web desk: one-time links, session cookies, the viewer of a request, and the
//! role and CSRF checks every page and form goes through.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{App, pages};
use crate::desk::{Role, Roles};
use crate::store::{Store, StoreError};

/// The session cookie's name.
pub const COOKIE: &str = "sme_desk";
/// Telegram users are the desk's users.
pub use crate::act::CHANNEL;
pub use crate::act::signin::{login_link, random_token, token_hash};

/// The roles of a user now, read through the act layer (admins from `ADMIN_IDS`, others from the
/// roles table); only Telegram users hold roles.
pub fn roles_for(store: &Store, admins: &[i64], channel: &str, id: &str) -> Result<Roles, StoreError> {
    if channel != CHANNEL {
        return Ok(Roles::default());
    }
    crate::act::roles_of(store, admins, id)
}

pub use crate::act::signin::holds_any;

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        super::SESSION_IDLE_SECS,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}", if secure { "; Secure" } else { "" })
}

/// The session token of a request's cookies.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// The content language for a request without a session: the browser's first language.
pub fn browser_lang(app: &App, headers: &HeaderMap) -> String {
    let tag = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(|v| v.split([',', ';']).next());
    app.content().language_for(tag.map(str::trim))
}

/// Who is asking, signed in, with their roles read now.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub channel: String,
    pub id: String,
    pub roles: Roles,
    pub lang: String,
    pub csrf: String,
    pub token_hash: String,
}

impl Viewer {
    /// Who acts, for the act layer.
    pub fn actor(&self) -> crate::act::Actor {
        crate::act::Actor { id: self.id.clone(), roles: self.roles, lang: self.lang.clone(), chat: None }
    }

    /// How the audit log and histories name them, as the act layer does (`staff 123`).
    pub fn label(&self) -> String {
        self.actor().label()
    }

    /// `None` when the viewer holds the role; otherwise the 403 page to answer with.
    pub fn require(&self, app: &App, role: Role) -> Option<Response> {
        (!self.roles.allows(role)).then(|| pages::status_page(app, Some(self), StatusCode::FORBIDDEN, "web_forbidden"))
    }

    /// A form that changes something must carry this session's CSRF token: `None` when it does,
    /// otherwise the 403 page to answer with.
    pub fn check_csrf(&self, app: &App, given: &str) -> Option<Response> {
        let (a, b) = (self.csrf.as_bytes(), given.as_bytes());
        let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        (!same).then(|| pages::status_page(app, Some(self), StatusCode::FORBIDDEN, "web_csrf_refused"))
    }
}

/// The viewer of a request, if signed in; a session whose user holds no role any more ends here.
pub fn viewer_of(app: &App, headers: &HeaderMap) -> Result<Option<Viewer>, StoreError> {
    let Some(token) = cookie_token(headers) else { return Ok(None) };
    let hash = token_hash(&token);
    let now = app.now();
    let mut store = app.store();
    let Some(session) = store.web_session(&hash, now, super::SESSION_IDLE_SECS)? else { return Ok(None) };
    let roles = roles_for(&store, &app.admins, &session.channel, &session.external_id)?;
    if !holds_any(roles) {
        store.web_end_sessions_of(&session.channel, &session.external_id)?;
        return Ok(None);
    }
    let lang = store.lang_of_external(&session.channel, &session.external_id)?.unwrap_or_else(|| browser_lang(app, headers));
    let lang = app.content().language_for(Some(&lang));
    Ok(Some(Viewer { channel: session.channel, id: session.external_id, roles, lang, csrf: session.csrf, token_hash: hash }))
}

impl FromRequestParts<Arc<App>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        match viewer_of(app, &parts.headers) {
            Ok(Some(viewer)) => Ok(viewer),
            Ok(None) => {
                let lang = browser_lang(app, &parts.headers);
                let next = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
                Err(pages::signed_out(app, &lang, &next).into_response())
            }
            Err(e) => Err(pages::server_error(app, None, &e)),
        }
    }
}

/// A same-site path to go to after signing in; anything else goes to the start page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains(['\\', '\r', '\n']) && n.len() <= 500 => n.to_string(),
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn only_same_site_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/inquiries/5?x=1")), "/inquiries/5?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_https() {
        let c = session_cookie("t", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"), "{c}");
        assert!(!session_cookie("t", false).contains("Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=b; sme_desk=tok; c=d".parse().unwrap());
        assert_eq!(cookie_token(&headers).as_deref(), Some("tok"));
    }
}
