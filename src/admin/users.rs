//! Users who log in through Tessera: create, list, show, change, disable, enable, and set
//! a password. Every change that ends access records its Shared Signals events.

use super::error::{invalid_as, ServiceError};
use super::Page;
use crate::domain::signals::Reason;
use crate::domain::user::{parse_email, Password, User, UserId, Username};
use crate::password;
use crate::signals::Emitter;
use crate::storage::{Storage, StorageError};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest display name.
const MAX_NAME: usize = 200;

/// A user to create. The password is hashed (argon2id) and never stored or logged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Display name (OIDC `name` claim).
    #[serde(default)]
    pub name: Option<String>,
    pub password: String,
}

/// A change to a user's profile, as a JSON merge patch (RFC 7396 §2): each member given
/// replaces the stored value, `null` removes it, an absent member leaves it alone.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `null` removes the address (and with it `email_verified`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub email: Option<Option<String>>,
    /// `null` removes the display name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub name: Option<Option<String>>,
}

/// A member that is present: `Some(None)` for `null`, `Some(Some(..))` for a value
/// (an absent one is `None` through `#[serde(default)]`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A new password for a user: everything obtained with the old one ends.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

/// A user as operators see it: never the password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `active` or `disabled`.
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub disabled_at: Option<String>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            email: user.email.clone(),
            name: user.name.clone(),
            status: if user.disabled_at.is_some() { "disabled" } else { "active" },
            created_at: user.created_at.to_rfc3339(),
            updated_at: user.updated_at.to_rfc3339(),
            disabled_at: user.disabled_at.map(|t| t.to_rfc3339()),
        }
    }
}

pub async fn create(storage: &dyn Storage, new: NewUser) -> Result<User, ServiceError> {
    let username = Username::parse(&new.username).map_err(invalid_as("username"))?;
    let email = new.email.as_deref().map(parse_email).transpose().map_err(invalid_as("email"))?;
    let password = Password::parse(new.password).map_err(invalid_as("password"))?;
    let now = Utc::now();
    let user = User {
        id: UserId::generate(),
        username,
        email,
        email_verified: false,
        name: checked_name(new.name.as_deref())?,
        password_hash: password::hash(password).await?,
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    match storage.insert_user(&user).await {
        Err(StorageError::Conflict(_)) => Err(ServiceError::Conflict(format!("username {} is taken", user.username))),
        other => Ok(other.map(|()| user)?),
    }
}

/// Every user, by username (the CLI's list).
pub async fn list_all(storage: &dyn Storage) -> Result<Vec<User>, ServiceError> {
    Ok(storage.list_users().await?)
}

/// Up to `limit` users after the username `after`, by username.
pub async fn list_page(storage: &dyn Storage, after: Option<&str>, limit: u32) -> Result<Page<User>, ServiceError> {
    let after = match after {
        Some(raw) => {
            let refused = || ServiceError::invalid("cursor", "the cursor is not one this server gave");
            let username = Username::parse(raw).map_err(|_| refused())?;
            storage.find_user_by_username(&username).await?.ok_or_else(refused)?;
            Some(username)
        }
        None => None,
    };
    let mut items = storage.list_users_page(after.as_ref(), i64::from(limit) + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().map(|u| u.username.as_str().to_owned()) } else { None };
    Ok(Page { items, next })
}

/// The user named `username`.
pub async fn named(storage: &dyn Storage, username: &str) -> Result<User, ServiceError> {
    let username = Username::parse(username).map_err(invalid_as("username"))?;
    storage
        .find_user_by_username(&username)
        .await?
        .ok_or_else(|| ServiceError::not_found("user named", username.as_str()))
}

/// The user whose id is `id`.
pub async fn by_id(storage: &dyn Storage, id: &str) -> Result<User, ServiceError> {
    let user_id = UserId::parse(id).map_err(invalid_as("user_id"))?;
    storage.find_user_by_id(&user_id).await?.ok_or_else(|| ServiceError::not_found("user", id))
}

/// Applies `patch` to `user`. Optimistic concurrency as for clients: on a lost race the
/// user is read again and the patch applied to what the other change left.
pub async fn update(storage: &dyn Storage, user: &User, patch: UserPatch) -> Result<User, ServiceError> {
    let missing = || ServiceError::not_found("user", user.id.as_str());
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let revision = storage.user_revision(&user.id).await?.ok_or_else(missing)?;
        let current = storage.find_user_by_id(&user.id).await?.ok_or_else(missing)?;
        if let Some(changed) = apply(storage, &current, &patch, revision).await? {
            return Ok(changed);
        }
    }
    Err(ServiceError::Conflict(format!("user {} is being changed by others: try again", user.id)))
}

/// How often a change is applied again after others won the race, before 409. Each round
/// of a race has a winner, so n changes racing on one row all land within n attempts: this
/// bounds the work of one request while letting a few dozen concurrent changes (an
/// operator's script in parallel) through without 409s.
const MAX_UPDATE_ATTEMPTS: usize = 32;

/// Writes `patch` over `user` if it is still at `revision`; `None` when it is not.
async fn apply(
    storage: &dyn Storage,
    user: &User,
    patch: &UserPatch,
    revision: i64,
) -> Result<Option<User>, ServiceError> {
    let email = match &patch.email {
        Some(Some(raw)) => Some(parse_email(raw).map_err(invalid_as("email"))?),
        Some(None) => None,
        None => user.email.clone(),
    };
    let name = match &patch.name {
        Some(raw) => checked_name(raw.as_deref())?,
        None => user.name.clone(),
    };
    let now = Utc::now();
    // OpenID Connect Core §5.1 `email_verified`: a verification was of the old address; a
    // new one is unverified until it is verified in turn.
    let email_verified = user.email_verified && email == user.email;
    if !storage.update_user_profile(&user.id, email.as_deref(), name.as_deref(), email_verified, revision, now).await? {
        return Ok(None);
    }
    Ok(Some(User { email, email_verified, name, updated_at: now, ..user.clone() }))
}

/// Disables a user and ends everything they obtained; false when they were disabled already.
pub async fn disable(storage: &dyn Storage, events: &Emitter, user: &User) -> Result<bool, ServiceError> {
    Ok(storage.disable_user(&user.id, &events.revocation(Reason::UserDisabled, Utc::now())).await?)
}

/// Enables a disabled user; false when they were not disabled.
pub async fn enable(storage: &dyn Storage, events: &Emitter, user: &User) -> Result<bool, ServiceError> {
    Ok(storage.enable_user(&user.id, &events.revocation(Reason::UserEnabled, Utc::now())).await?)
}

/// Sets a new password, ending everything obtained with the old one.
pub async fn set_password(
    storage: &dyn Storage,
    events: &Emitter,
    user: &User,
    password: String,
) -> Result<(), ServiceError> {
    let password = Password::parse(password).map_err(invalid_as("password"))?;
    let hash = password::hash(password).await?;
    let revocation = events.revocation(Reason::PasswordChanged, Utc::now());
    if !storage.set_password_hash(&user.id, &hash, &revocation).await? {
        return Err(ServiceError::not_found("user named", user.username.as_str()));
    }
    Ok(())
}

/// A display name: trimmed, empty meaning none.
fn checked_name(raw: Option<&str>) -> Result<Option<String>, ServiceError> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid("name", format!("at most {MAX_NAME} characters, no control characters")));
    }
    Ok(Some(name.to_owned()))
}
