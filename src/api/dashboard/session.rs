//! Who is signed in to the dashboard: a session per sign-in, named by a random id in an HttpOnly,
//! SameSite=Strict cookie, with its own CSRF token that every form carries back.
//!
//! A session holds the token's name and a SHA-256 of its secret, never the secret: each request
//! resolves the caller again from the settings in force, so a token removed or changed by a reload
//! signs its sessions out at once. Sessions live in memory (a restart signs everyone out), expire
//! after [`IDLE`] without a request, and are bounded in number so that sign-ins cannot grow memory
//! without end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header;
use subtle::ConstantTimeEq;

use crate::api::auth::{Caller, authenticate};
use crate::api::idempotency::sha256_hex;
use crate::settings::config::ApiToken;

/// The session cookie's name.
pub const COOKIE: &str = "campaignd_session";
/// The cookie that carries the sign-in form's CSRF token before there is a session.
pub const SIGN_IN_COOKIE: &str = "campaignd_sign_in";
/// A session unused this long is signed out.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; a sign-in beyond it drops the least recently used.
pub const MAX_SESSIONS: usize = 10_000;

/// 32 random bytes as hex, from the thread's CSPRNG (ChaCha seeded by the OS).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// One signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    pub token_name: String,
    token_hash: String,
    /// What every form of this session must send back as `csrf`.
    pub csrf: String,
    last_seen: Instant,
    /// A one-time message for the next page (what an answer did, or why it was refused).
    pub notice: Option<Notice>,
}

/// A message shown once at the top of the next page.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

/// The signed-in sessions.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Signs in with a token's secret: the new session's id, or `None` if no configured token
    /// has that secret.
    pub fn sign_in(&self, tokens: &[ApiToken], secret: &str, now: Instant) -> Option<String> {
        let caller = authenticate(tokens, secret)?;
        let id = random_token();
        let mut sessions = self.lock();
        sessions.retain(|_, s| now.duration_since(s.last_seen) < IDLE);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                token_name: caller.name().to_owned(),
                token_hash: sha256_hex(secret.as_bytes()),
                csrf: random_token(),
                last_seen: now,
                notice: None,
            },
        );
        Some(id)
    }

    /// The session `id` and its caller under `tokens` (the settings in force); `None` when it is
    /// unknown, idle too long, or its token is gone or changed. A person's request takes the
    /// notice and counts as use; a page's own `polled` refresh does neither, so the notice waits
    /// for the page the person opens and a tab left open still lets its session idle out.
    pub fn resume(
        &self,
        tokens: &[ApiToken],
        id: &str,
        now: Instant,
        polled: bool,
    ) -> Option<(Session, Caller)> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        let token = tokens
            .iter()
            .find(|t| t.name == session.token_name)
            .filter(|t| same(&sha256_hex(t.token.as_bytes()), &session.token_hash));
        let fresh = now.duration_since(session.last_seen) < IDLE;
        let Some(token) = token.filter(|_| fresh) else {
            sessions.remove(id);
            return None;
        };
        let caller = authenticate(std::slice::from_ref(token), &token.token)?;
        if polled {
            let mut shown = session.clone();
            shown.notice = None;
            return Some((shown, caller));
        }
        session.last_seen = now;
        let shown = session.clone();
        session.notice = None;
        Some((shown, caller))
    }

    /// Leaves a notice for the session's next page.
    pub fn notify(&self, id: &str, notice: Notice) {
        if let Some(session) = self.lock().get_mut(id) {
            session.notice = Some(notice);
        }
    }

    pub fn sign_out(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole dashboard; `max_age` 0 removes
/// it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token(name: &str, secret: &str) -> ApiToken {
        ApiToken {
            name: name.into(),
            token: secret.into(),
            tenant: Some("acme".into()),
            role: None,
        }
    }

    #[test]
    fn a_session_holds_while_its_token_does_and_ends_when_it_changes_idles_or_signs_out() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let tokens = vec![token("acme", "acme-secret-00000001")];
        assert!(sessions.sign_in(&tokens, "wrong", now).is_none());
        let id = sessions
            .sign_in(&tokens, "acme-secret-00000001", now)
            .unwrap();
        let (session, caller) = sessions.resume(&tokens, &id, now, false).unwrap();
        assert_eq!(caller.name(), "acme");
        assert_eq!(session.csrf.len(), 64);
        assert!(sessions.resume(&tokens, "forged", now, false).is_none());

        // The same name with another secret (a reload rotated it) is not the same token.
        let rotated = vec![token("acme", "acme-secret-00000002")];
        assert!(sessions.resume(&rotated, &id, now, false).is_none());
        assert!(
            sessions.resume(&tokens, &id, now, false).is_none(),
            "removed"
        );

        let id = sessions
            .sign_in(&tokens, "acme-secret-00000001", now)
            .unwrap();
        assert!(sessions.resume(&tokens, &id, now + IDLE, false).is_none());

        let id = sessions
            .sign_in(&tokens, "acme-secret-00000001", now)
            .unwrap();
        sessions.notify(
            &id,
            Notice {
                ok: true,
                text: "done".into(),
            },
        );
        // A page's own refresh neither takes the notice nor keeps the session alive.
        let (polled, _) = sessions.resume(&tokens, &id, now, true).unwrap();
        assert_eq!(polled.notice, None);
        let (first, _) = sessions.resume(&tokens, &id, now, false).unwrap();
        let (second, _) = sessions.resume(&tokens, &id, now, false).unwrap();
        assert_eq!(first.notice.map(|n| n.text).as_deref(), Some("done"));
        assert_eq!(second.notice, None, "a notice is shown once");
        let later = now + IDLE / 2;
        assert!(sessions.resume(&tokens, &id, later, true).is_some());
        assert!(
            sessions.resume(&tokens, &id, now + IDLE, true).is_none(),
            "polls alone let it idle out"
        );
        let id = sessions
            .sign_in(&tokens, "acme-secret-00000001", now)
            .unwrap();
        sessions.sign_out(&id);
        assert!(sessions.resume(&tokens, &id, now, false).is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::default();
        let tokens = vec![token("acme", "acme-secret-00000001")];
        let now = Instant::now();
        let first = sessions
            .sign_in(&tokens, "acme-secret-00000001", now)
            .unwrap();
        for i in 1..=MAX_SESSIONS {
            let at = now + Duration::from_millis(i as u64);
            sessions.sign_in(&tokens, "acme-secret-00000001", at);
        }
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
        assert!(sessions.resume(&tokens, &first, now, false).is_none());
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; campaignd_session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
        let set = set_cookie(COOKIE, "abc", IDLE);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    }
}
