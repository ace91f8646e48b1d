//! Signing keys: list them (public data only) and run the next rotation step on demand,
//! or the emergency rotation of a compromised key (`keys::rotation`).

use super::error::ServiceError;
use crate::keys::kek::KeyEncryptionKey;
use crate::keys::rotation::{self, RotationSchedule, Step};
use crate::storage::{Storage, StoredKey};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

/// A signing key as operators see it: never its private half, sealed or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    /// `next`, `current` or `retired`.
    pub state: &'static str,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub retired_at: Option<String>,
}

impl From<&StoredKey> for KeyView {
    fn from(key: &StoredKey) -> Self {
        Self {
            kid: key.kid.clone(),
            alg: key.algorithm.clone(),
            state: key.state.as_str(),
            created_at: key.created_at.to_rfc3339(),
            activated_at: key.activated_at.map(|t| t.to_rfc3339()),
            retired_at: key.retired_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// One rotation step that was taken (or, `not_yet`, could not be yet).
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// `published`, `promoted`, `removed`, `not_yet` or `lost` (another replica did it).
    pub step: &'static str,
    /// The key published, removed, or waiting; the new current key when promoted.
    pub kid: Option<String>,
    /// When promoted: the key that signed until now (retired, still published).
    pub retired_kid: Option<String>,
    /// When the next key may sign (`published`, `not_yet`).
    pub signs_from: Option<String>,
}

impl From<&Step> for StepView {
    fn from(step: &Step) -> Self {
        let view = |step, kid: Option<&String>, retired: Option<&String>, from: Option<&chrono::DateTime<Utc>>| Self {
            step,
            kid: kid.cloned(),
            retired_kid: retired.cloned(),
            signs_from: from.map(|t| t.to_rfc3339()),
        };
        match step {
            Step::Published { kid, signs_from } => view("published", Some(kid), None, Some(signs_from)),
            Step::Promoted { old, new } => view("promoted", Some(new), Some(old), None),
            Step::Removed { kid } => view("removed", Some(kid), None, None),
            Step::NotYet { kid, signs_from } => view("not_yet", Some(kid), None, Some(signs_from)),
            Step::Lost => view("lost", None, None, None),
        }
    }
}

pub async fn list(storage: &dyn Storage) -> Result<Vec<StoredKey>, ServiceError> {
    Ok(storage.list_signing_keys().await?)
}

/// The next rotation step now; with `emergency`, a new key signs at once and the current
/// one is deleted (its tokens stop verifying).
pub async fn rotate(
    storage: &dyn Storage,
    kek: &KeyEncryptionKey,
    schedule: &RotationSchedule,
    emergency: bool,
) -> Result<Vec<Step>, ServiceError> {
    Ok(if emergency {
        rotation::emergency(storage, kek, schedule, Utc::now()).await?
    } else {
        rotation::rotate_now(storage, kek, schedule, Utc::now()).await?
    })
}
