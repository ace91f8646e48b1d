//! The SSO session cookie: a random id (only its digest is stored), `HttpOnly`,
//! `SameSite=Lax`, `Path` the issuer's path, and `Secure` with a name prefix when the
//! issuer is https.

use super::{Context, FlowSettings};
use crate::domain::authorization::{Session, SessionId};
use crate::domain::secret::{GeneratedSecret, SecretDigest};
use crate::domain::signals::Reason;
use crate::domain::user::User;
use crate::storage::StorageError;
use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

/// Cookie names. Over https they carry a prefix the browser enforces (RFC 6265bis §4.1.3):
/// `__Host-` (§4.1.3.2: `Secure`, no `Domain`, `Path=/`) at the root, so no other path or
/// subdomain can set or shadow them. An issuer under a path scopes its cookies to that
/// path, which `__Host-` forbids, so there it is `__Secure-` (§4.1.3.1: `Secure` only): a
/// plain-http page on the same host still cannot set them, but another application on the
/// same origin could, which is what sharing an origin means.
pub fn session_cookie_name(settings: &FlowSettings) -> &'static str {
    match prefix(settings) {
        Prefix::Host => "__Host-tessera_session",
        Prefix::Secure => "__Secure-tessera_session",
        Prefix::None => "tessera_session",
    }
}

pub fn csrf_cookie_name(settings: &FlowSettings) -> &'static str {
    match prefix(settings) {
        Prefix::Host => "__Host-tessera_csrf",
        Prefix::Secure => "__Secure-tessera_csrf",
        Prefix::None => "tessera_csrf",
    }
}

enum Prefix {
    Host,
    Secure,
    None,
}

fn prefix(settings: &FlowSettings) -> Prefix {
    match (settings.is_https, settings.base_path.is_empty()) {
        (true, true) => Prefix::Host,
        (true, false) => Prefix::Secure,
        (false, _) => Prefix::None,
    }
}

/// A cookie with Tessera's attributes; `max_age` None makes a browser-session cookie.
/// `Path` is the issuer's path: the browser sends the cookies to Tessera's pages only,
/// never to other applications served on the same host.
pub fn cookie(
    settings: &FlowSettings,
    name: &'static str,
    value: String,
    max_age: Option<time::Duration>,
) -> Cookie<'static> {
    let path = if settings.base_path.is_empty() { "/".to_owned() } else { settings.base_path.clone() };
    let mut builder =
        Cookie::build(name, value).path(path).http_only(true).same_site(SameSite::Lax).secure(settings.is_https);
    if let Some(age) = max_age {
        builder = builder.max_age(age);
    }
    builder.finish()
}

/// An expired cookie that makes the browser drop `name`.
pub fn removal(settings: &FlowSettings, name: &'static str) -> Cookie<'static> {
    let mut cookie = cookie(settings, name, String::new(), Some(time::Duration::ZERO));
    cookie.make_removal();
    cookie
}

/// The digest of the session id in the request's cookie, live or not.
pub fn cookie_digest(req: &HttpRequest, settings: &FlowSettings) -> Option<SecretDigest> {
    req.cookie(session_cookie_name(settings)).map(|cookie| SecretDigest::of(cookie.value()))
}

/// The live session named by the request's cookie, if any; refreshes its idle timer.
pub async fn current(req: &HttpRequest, ctx: &Context) -> Result<Option<(SecretDigest, Session)>, StorageError> {
    let Some(digest) = cookie_digest(req, &ctx.settings) else { return Ok(None) };
    let now = ctx.now();
    let idle_cutoff = now - ctx.settings.session_idle;
    match ctx.storage().find_session(&digest, now, idle_cutoff).await? {
        Some(session) => {
            ctx.storage().touch_session(&digest, now).await?;
            Ok(Some((digest, session)))
        }
        None => Ok(None),
    }
}

/// Signs `user` in, whose password hash was just verified: always under a new session id
/// (a planted id is worthless: no session fixation). The browser's `previous` session, if
/// it is live, is the same person signing in again (`prompt=login`, `max_age`): it is
/// renewed, keeping its `sid`, so the families and codes of that session stay tied to it
/// and the next logout ends them too; or it is someone else's, and it ends, with its
/// cascade, as a logout would. Returns the cookie to set, or `None` when the user's
/// password changed or the user was disabled while the password was being checked.
pub async fn start(
    ctx: &Context,
    user: &User,
    previous: Option<&SecretDigest>,
    now: DateTime<Utc>,
) -> Result<Option<(Session, Cookie<'static>)>, StorageError> {
    let storage = ctx.storage();
    let settings = &ctx.settings;
    let id = GeneratedSecret::generate("");
    let fresh = Session {
        sid: SessionId::generate(),
        user_id: user.id.clone(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at: now + settings.session_absolute,
    };
    let live = match previous {
        Some(previous) => storage.find_session(previous, now, now - settings.session_idle).await?,
        None => None,
    };
    let (session, is_started) = match (previous, live) {
        (Some(previous), Some(live)) if live.user_id == user.id => {
            let renewed = Session { sid: live.sid, created_at: live.created_at, ..fresh };
            let is_renewed = storage.renew_session(previous, &id.digest(), &renewed, &user.password_hash).await?;
            (renewed, is_renewed)
        }
        (Some(previous), live) => {
            if live.is_some() {
                storage.end_session(previous, &ctx.events.revocation(Reason::SignedInAsAnother, now)).await?;
            }
            let is_inserted = storage.insert_session(&id.digest(), &fresh, &user.password_hash).await?;
            (fresh, is_inserted)
        }
        (None, _) => {
            let is_inserted = storage.insert_session(&id.digest(), &fresh, &user.password_hash).await?;
            (fresh, is_inserted)
        }
    };
    if !is_started {
        return Ok(None);
    }
    let max_age = time::Duration::seconds(settings.session_absolute.num_seconds());
    Ok(Some((session, cookie(settings, session_cookie_name(settings), id.expose().to_owned(), Some(max_age)))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Issuer;

    fn settings(issuer: &str) -> FlowSettings {
        let issuer = Issuer::parse(issuer).unwrap();
        FlowSettings {
            is_https: issuer.is_https(),
            base_path: issuer.path().to_owned(),
            issuer,
            session_idle: chrono::Duration::minutes(1),
            session_absolute: chrono::Duration::minutes(2),
            code_ttl: chrono::Duration::minutes(1),
            par_required: false,
        }
    }

    fn session_cookie(settings: &FlowSettings) -> Cookie<'static> {
        cookie(settings, session_cookie_name(settings), "v".into(), None)
    }

    #[test]
    fn an_https_root_issuer_keeps_the_host_prefix_and_the_root_path() {
        let settings = settings("https://id.example");
        let cookie = session_cookie(&settings);
        assert_eq!(cookie.name(), "__Host-tessera_session");
        assert_eq!(csrf_cookie_name(&settings), "__Host-tessera_csrf");
        assert_eq!((cookie.path(), cookie.secure()), (Some("/"), Some(true)));
        assert_eq!(cookie.domain(), None, "__Host- forbids Domain");
    }

    /// `__Host-` with `Path=/auth` would be refused by the browser (RFC 6265bis §4.1.3.2).
    #[test]
    fn an_https_issuer_under_a_path_uses_the_secure_prefix_and_its_path() {
        let settings = settings("https://example.com/auth/");
        let cookie = session_cookie(&settings);
        assert_eq!(cookie.name(), "__Secure-tessera_session");
        assert_eq!(csrf_cookie_name(&settings), "__Secure-tessera_csrf");
        assert_eq!((cookie.path(), cookie.secure(), cookie.http_only()), (Some("/auth"), Some(true), Some(true)));
        assert!(cookie.to_string().contains("Path=/auth"), "{cookie}");
        let removal = removal(&settings, csrf_cookie_name(&settings));
        assert_eq!((removal.name(), removal.path()), ("__Secure-tessera_csrf", Some("/auth")));
    }

    #[test]
    fn an_http_issuer_has_no_prefix() {
        let settings = settings("http://127.0.0.1:8080/auth");
        let cookie = session_cookie(&settings);
        assert_eq!((cookie.name(), cookie.path(), cookie.secure()), ("tessera_session", Some("/auth"), Some(false)));
    }
}
