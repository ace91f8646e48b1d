//! Key rotation that never breaks a verifier: next → current → retired → removed.
//!
//! - A `next` key is published at least `jwks_max_age + margin` before it signs, so any
//!   verifier honouring the JWKS `Cache-Control` has it before the first token it signs.
//! - A `retired` key stays published until `max token lifetime + margin` after it stopped
//!   signing, so every token it signed expires before it disappears.
//! - Each step is a conditional write (unique indexes on `current` and `next`, guarded
//!   updates), so with several replicas exactly one performs it; the others see it on
//!   their next reload (the margin covers `refresh_interval`).

use super::kek::KeyEncryptionKey;
use super::signing_keys::{generate_key_der, seal_key};
use crate::config::Settings;
use crate::storage::{KeyState, Storage, StoredKey};
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};

#[derive(Clone, Debug)]
pub struct RotationSchedule {
    pub period: Duration,
    /// How long a next key must be published before it may sign.
    pub publish_lead: Duration,
    /// How long a retired key stays published.
    pub retire_after: Duration,
    pub rsa_bits: usize,
}

impl RotationSchedule {
    pub fn from_settings(settings: &Settings) -> Self {
        let duration = |d: std::time::Duration| Duration::from_std(d).unwrap_or(Duration::MAX);
        let margin = duration(settings.keys.rotation_margin.0);
        let longest_token = duration(settings.tokens.access_token_ttl.0.max(settings.tokens.id_token_ttl.0));
        Self {
            period: duration(settings.keys.rotation_period.0),
            publish_lead: duration(settings.keys.jwks_max_age.0) + margin,
            retire_after: longest_token + margin,
            rsa_bits: settings.keys.rsa_bits.0,
        }
    }
}

/// What a rotation step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new key is published; it may sign from `signs_from`.
    Published { kid: String, signs_from: DateTime<Utc> },
    /// `new` signs now; `old` is retired (still published).
    Promoted { old: String, new: String },
    /// A retired key left the JWKS.
    Removed { kid: String },
    /// Nothing may happen yet; the next key may sign from `signs_from`.
    NotYet { kid: String, signs_from: DateTime<Utc> },
    /// Another replica did the step first.
    Lost,
}

fn find(keys: &[StoredKey], state: KeyState) -> Option<&StoredKey> {
    keys.iter().find(|k| k.state == state)
}

/// Since when the current key signs, and when the next scheduled step is due (publishing
/// the next key, or promoting it): what the metrics show. `None` without a current key.
pub fn schedule_state(keys: &[StoredKey], schedule: &RotationSchedule) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let current = find(keys, KeyState::Current)?;
    let since = current.activated_at.unwrap_or(current.created_at);
    let period_ends = since + schedule.period;
    let next_step = match find(keys, KeyState::Next) {
        None => period_ends - schedule.publish_lead,
        Some(next) => period_ends.max(next.created_at + schedule.publish_lead),
    };
    Some((since, next_step))
}

/// Removes retired keys whose tokens have all expired.
async fn remove_expired(
    storage: &dyn Storage,
    keys: &[StoredKey],
    schedule: &RotationSchedule,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = vec![];
    for key in keys.iter().filter(|k| k.state == KeyState::Retired) {
        let retired_at = key.retired_at.unwrap_or(key.created_at);
        if retired_at + schedule.retire_after <= now && storage.delete_signing_key(&key.kid, KeyState::Retired).await? {
            crate::audit!(info, "key_rotation", "removed", kid = %key.kid);
            steps.push(Step::Removed { kid: key.kid.clone() });
        }
    }
    Ok(steps)
}

async fn publish_next(
    storage: &dyn Storage,
    kek: &KeyEncryptionKey,
    schedule: &RotationSchedule,
    now: DateTime<Utc>,
) -> anyhow::Result<Step> {
    let der = generate_key_der(schedule.rsa_bits).await?;
    let row = seal_key(kek, &der, KeyState::Next, now)?;
    if storage.insert_signing_key(&row).await.context("storing the next signing key")? {
        crate::audit!(info, "key_rotation", "published", kid = %row.kid);
        Ok(Step::Published { kid: row.kid, signs_from: now + schedule.publish_lead })
    } else {
        Ok(Step::Lost)
    }
}

async fn promote(
    storage: &dyn Storage,
    current: &StoredKey,
    next: &StoredKey,
    now: DateTime<Utc>,
) -> anyhow::Result<Step> {
    if storage.promote_next_key(&current.kid, &next.kid, now).await? {
        crate::audit!(info, "key_rotation", "promoted", kid = %next.kid, old_kid = %current.kid);
        Ok(Step::Promoted { old: current.kid.clone(), new: next.kid.clone() })
    } else {
        Ok(Step::Lost)
    }
}

/// The automatic schedule: publish the next key `publish_lead` before the current one's
/// period ends, promote it when the period is over, remove expired retired keys.
pub async fn run_due_steps(
    storage: &dyn Storage,
    kek: &KeyEncryptionKey,
    schedule: &RotationSchedule,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Step>> {
    let keys = storage.list_signing_keys().await?;
    let mut steps = remove_expired(storage, &keys, schedule, now).await?;
    let Some(current) = find(&keys, KeyState::Current) else { return Ok(steps) };
    let period_ends = current.activated_at.unwrap_or(current.created_at) + schedule.period;
    match find(&keys, KeyState::Next) {
        None if period_ends - schedule.publish_lead <= now => {
            steps.push(publish_next(storage, kek, schedule, now).await?)
        }
        Some(next) if period_ends <= now && next.created_at + schedule.publish_lead <= now => {
            steps.push(promote(storage, current, next, now).await?)
        }
        _ => {}
    }
    Ok(steps)
}

/// `tessera keys rotate`: the next step now, without waiting for the period — but never
/// before a published key may safely sign.
pub async fn rotate_now(
    storage: &dyn Storage,
    kek: &KeyEncryptionKey,
    schedule: &RotationSchedule,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Step>> {
    let keys = storage.list_signing_keys().await?;
    let mut steps = remove_expired(storage, &keys, schedule, now).await?;
    let current =
        find(&keys, KeyState::Current).context("the database has no current signing key: start the server once")?;
    let step = match find(&keys, KeyState::Next) {
        None => publish_next(storage, kek, schedule, now).await?,
        Some(next) if next.created_at + schedule.publish_lead <= now => promote(storage, current, next, now).await?,
        Some(next) => Step::NotYet { kid: next.kid.clone(), signs_from: next.created_at + schedule.publish_lead },
    };
    steps.push(step);
    Ok(steps)
}

/// `tessera keys rotate --emergency`: the current key is compromised. A new key signs at
/// once and the old one is deleted, accepting that its tokens stop verifying.
pub async fn emergency(
    storage: &dyn Storage,
    kek: &KeyEncryptionKey,
    schedule: &RotationSchedule,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = vec![];
    let keys = storage.list_signing_keys().await?;
    let current = find(&keys, KeyState::Current).context("the database has no current signing key")?.clone();
    let next = match find(&keys, KeyState::Next) {
        Some(next) => next.clone(),
        None => {
            steps.push(publish_next(storage, kek, schedule, now).await?);
            let keys = storage.list_signing_keys().await?;
            find(&keys, KeyState::Next).context("no next key after publishing one")?.clone()
        }
    };
    steps.push(promote(storage, &current, &next, now).await?);
    if storage.delete_signing_key(&current.kid, KeyState::Retired).await? {
        crate::audit!(warn, "key_rotation", "emergency_deleted", kid = %current.kid);
        steps.push(Step::Removed { kid: current.kid });
    }
    Ok(steps)
}
