//! Audit events: one structured log event per security-relevant happening, in a format
//! that is stable (README, "Audit events"). Each carries `audit = true`, `event` (what
//! happened), `outcome`, and whichever of `client_id`, `user_id`, `client_ip`, `sid`,
//! `family_id`, `kid`, `reason` apply; on the HTTP surfaces the enclosing request span adds the
//! `request_id`. Never a secret, a token, a code or a password.
//!
//! Through `tracing` like every other line, so they go where the logs go (stderr; JSON
//! with `log.format = "json"`), and the operator filters on `audit`.

/// `audit!(info | warn, "event", "outcome", field = value, …)`: one audit event. Failures
/// that point at an attack (a replayed code, a reused refresh token) are `warn`.
#[macro_export]
macro_rules! audit {
    ($level:ident, $event:literal, $outcome:literal $(, $($field:tt)+)?) => {
        ::tracing::$level!(audit = true, event = $event, outcome = $outcome $(, $($field)+)?, concat!("audit: ", $event))
    };
}
