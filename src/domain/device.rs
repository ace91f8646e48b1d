//! The device authorization grant (RFC 8628): the user code a person types (§6.1), the
//! request as stored while the person decides, and the answers to a polling device
//! (§3.5), decided here without I/O.

use super::authorization::SessionId;
use super::client::ClientId;
use super::scope::ScopeSet;
use super::user::UserId;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use chrono::{DateTime, Duration, Utc};
use std::fmt;

/// RFC 8628 §6.1's example alphabet: twenty consonants, no vowels (so no words) and no
/// digits (so nothing to mistake for `O` or `I`); typed in any case, compared upper-case.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters of a user code: 20^8 ≈ 2^34.6 codes (§5.1 wants the entropy paired with
/// rate limiting, which the verification page does).
pub const USER_CODE_LENGTH: usize = 8;

/// A user code in its canonical form: eight letters of [`USER_CODE_ALPHABET`], no dash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// A fresh code, uniformly drawn (rejection sampling: 256 is not a multiple of 20).
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let mut code = String::with_capacity(USER_CODE_LENGTH);
        while code.len() < USER_CODE_LENGTH {
            let mut byte = [0u8; 1];
            rng.fill(&mut byte).expect("the OS random number generator failed");
            // 240 = 12 × 20: bytes at or above it would favour the first letters.
            if byte[0] < 240 {
                code.push(USER_CODE_ALPHABET[usize::from(byte[0] % 20)] as char);
            }
        }
        Self(code)
    }

    /// What a person typed: case, spaces and dashes do not matter (§6.1: "the
    /// authorization server should be case-insensitive ... and ignore ... punctuation").
    /// `None` unless it is then eight letters of the alphabet; the input is bounded so a
    /// pasted essay is refused before it is walked.
    pub fn parse(typed: &str) -> Option<Self> {
        if typed.len() > 64 {
            return None;
        }
        let code: String =
            typed.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
        let is_valid = code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        is_valid.then_some(Self(code))
    }

    /// The canonical form (what is digested and what forms carry).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How it is shown to people: `XXXX-XXXX` (§6.1: easier to read and type).
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..4], &self.0[4..])
    }
}

/// Redacted: a user code in a log line would let its reader approve the device.
impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(..)")
    }
}

/// Where a device authorization request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the person (§3.5 `authorization_pending`).
    Pending,
    /// Approved at the verification page; the next poll redeems it.
    Approved,
    /// Denied (§3.5 `access_denied`).
    Denied,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "denied" => Some(Self::Denied),
            _ => None,
        }
    }
}

/// A device authorization request (RFC 8628 §3.1) as stored.
#[derive(Clone, Debug)]
pub struct DeviceRequest {
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub status: DeviceStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// §3.2 `interval`, raised by [`SLOW_DOWN_STEP`] on every `slow_down`.
    pub interval: Duration,
    /// The earliest time the next poll is welcome.
    pub next_poll_at: DateTime<Utc>,
}

/// Who approved a device request: the grant its device code then stands for, with the
/// session it came from (`sid`), as an authorization code's does.
#[derive(Clone, Debug)]
pub struct DeviceApproval {
    pub user_id: UserId,
    pub sid: SessionId,
    pub auth_time: DateTime<Utc>,
}

/// §3.5: "the interval MUST be increased by 5 seconds for this and all subsequent requests".
pub const SLOW_DOWN_STEP: Duration = Duration::seconds(5);

/// The answer to a poll of a device code that the redeeming statement did not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePoll {
    /// Approved, and this poll took it: issue the tokens (the row is gone).
    Redeemed { client_id: ClientId, scope: ScopeSet, user_id: UserId, sid: SessionId, auth_time: DateTime<Utc> },
    /// §3.5 `authorization_pending`; the next poll is welcome after the interval.
    Pending,
    /// §3.5 `slow_down`: polled before the interval passed; the interval is now this.
    SlowDown { interval: Duration },
    /// §3.5 `access_denied`; also when the session that approved it has ended since.
    Denied,
    /// §3.5 `expired_token`.
    Expired,
    /// Unknown (or redeemed already), or another client's: `invalid_grant`.
    Invalid,
}

/// The polling rule of §3.5 for a pending request polled at `now`: the new `interval` and
/// `next_poll_at`, and whether the poll came too early (`slow_down`).
pub fn next_poll(request: &DeviceRequest, now: DateTime<Utc>) -> (Duration, DateTime<Utc>, bool) {
    if now < request.next_poll_at {
        let interval = request.interval + SLOW_DOWN_STEP;
        (interval, now + interval, true)
    } else {
        (request.interval, now + request.interval, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_eight_letters_of_the_alphabet_and_parse_back() {
        for _ in 0..200 {
            let code = UserCode::generate();
            assert_eq!(code.as_str().len(), 8);
            assert!(code.as_str().bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            assert_eq!(UserCode::parse(&code.display()), Some(code.clone()));
            assert_eq!(UserCode::parse(&code.as_str().to_lowercase()), Some(code));
        }
    }

    #[test]
    fn typed_codes_ignore_case_dashes_and_spaces_and_nothing_else() {
        let expected = UserCode::parse("WDJBMJHT").unwrap();
        for typed in ["wdjb-mjht", " WDJB MJHT ", "wdjbmjht", "W-D-J-B-M-J-H-T"] {
            assert_eq!(UserCode::parse(typed).as_ref(), Some(&expected), "{typed}");
        }
        for typed in ["", "WDJB-MJH", "WDJB-MJHTX", "WDJB-MJH0", "AEIOUAEI", "WDJB_MJHT", &"B".repeat(65)] {
            assert_eq!(UserCode::parse(typed), None, "{typed}");
        }
        assert_eq!(expected.display(), "WDJB-MJHT");
        assert_eq!(format!("{expected:?}"), "UserCode(..)");
    }

    #[test]
    fn polling_before_the_interval_slows_the_device_down_by_five_seconds() {
        let now = Utc::now();
        let request = DeviceRequest {
            client_id: ClientId::parse("tv").unwrap(),
            scope: ScopeSet::parse("openid").unwrap(),
            status: DeviceStatus::Pending,
            created_at: now,
            expires_at: now + Duration::minutes(10),
            interval: Duration::seconds(5),
            next_poll_at: now + Duration::seconds(5),
        };
        assert_eq!(next_poll(&request, now), (Duration::seconds(10), now + Duration::seconds(10), true));
        let later = now + Duration::seconds(5);
        assert_eq!(next_poll(&request, later), (Duration::seconds(5), later + Duration::seconds(5), false));
    }
}
