//! `/admin/v1/users`: list, create, show, change, disable, enable, set a password.

use super::auth::AdminCaller;
use super::problem::{ApiError, Problem};
use super::{audited, cursor, json_body, CursorKind, PageQuery};
use crate::admin::users::{self, NewPassword, NewUser, UserPatch, UserView};
use crate::signals::Emitter;
use crate::storage::Storage;
use actix_web::web::{Bytes, Data, Path, Query};
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// A page of users, by username.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next: Option<String>,
}

/// List users.
#[utoipa::path(get, path = "/admin/v1/users", tag = "users", params(PageQuery),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    _: AdminCaller,
    storage: Data<dyn Storage>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = query.parse(CursorKind::Users)?;
    let page = users::list_page(&**storage, after.as_deref(), limit).await?;
    let items = page.items.iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok().json(UserPage { items, next: cursor(CursorKind::Users, page.next) }))
}

/// Create a user with a password.
#[utoipa::path(post, path = "/admin/v1/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 400, description = "Invalid user; `field` names the member", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(caller: AdminCaller, storage: Data<dyn Storage>, body: Bytes) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let new: NewUser = json_body(&body)?;
        Ok(users::create(&**storage, new).await?)
    }
    .await;
    let target = result.as_ref().map(|u| u.id.as_str().to_owned()).unwrap_or_default();
    let user = audited(&caller, "user_create", &target, result)?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

/// Show a user.
#[utoipa::path(get, path = "/admin/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "Not a user id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show(_: AdminCaller, storage: Data<dyn Storage>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let user = users::by_id(&**storage, &id).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// Change a user's e-mail address or display name.
#[utoipa::path(patch, path = "/admin/v1/users/{user_id}", tag = "users", request_body = UserPatch,
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user as changed", body = UserView),
        (status = 400, description = "Invalid change; `field` names the member", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    id: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let patch: UserPatch = json_body(&body)?;
        let user = users::by_id(&**storage, &id).await?;
        Ok(users::update(&**storage, &user, patch).await?)
    }
    .await;
    let user = audited(&caller, "user_update", &id, result)?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// Disable a user: they can no longer log in, and everything they obtained ends.
#[utoipa::path(post, path = "/admin/v1/users/{user_id}/disable", tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user, disabled (also when they were already)", body = UserView),
        (status = 400, description = "Not a user id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn disable(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    events: Data<Emitter>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let user = users::by_id(&**storage, &id).await?;
        users::disable(&**storage, &events, &user).await?;
        Ok(users::by_id(&**storage, &id).await?)
    }
    .await;
    let user = audited(&caller, "user_disable", &id, result)?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// Enable a disabled user again.
#[utoipa::path(post, path = "/admin/v1/users/{user_id}/enable", tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user, enabled (also when they were already)", body = UserView),
        (status = 400, description = "Not a user id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn enable(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    events: Data<Emitter>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let user = users::by_id(&**storage, &id).await?;
        users::enable(&**storage, &events, &user).await?;
        Ok(users::by_id(&**storage, &id).await?)
    }
    .await;
    let user = audited(&caller, "user_enable", &id, result)?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// Set a user's password: everything obtained with the old one ends.
#[utoipa::path(put, path = "/admin/v1/users/{user_id}/password", tag = "users", request_body = NewPassword,
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Invalid password", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_password(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    events: Data<Emitter>,
    id: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let new: NewPassword = json_body(&body)?;
        let user = users::by_id(&**storage, &id).await?;
        Ok(users::set_password(&**storage, &events, &user, new.password).await?)
    }
    .await;
    audited(&caller, "user_set_password", &id, result)?;
    Ok(HttpResponse::NoContent().finish())
}
