//! `/admin/v1/users/{id}/sessions`, `/admin/v1/sessions`, `/admin/v1/keys` and
//! `/admin/v1/streams`: logins, signing keys and Shared Signals streams.

use super::auth::AdminCaller;
use super::problem::{ApiError, Problem};
use super::{audited, cursor, optional_json_body, AdminSettings, CursorKind, PageQuery, Revoked};
use crate::admin::keys::{self, KeyView, StepView};
use crate::admin::sessions::{self, FamilyView};
use crate::admin::streams::{self, DisableStream, StreamView};
use crate::admin::users;
use crate::signals::Emitter;
use crate::storage::Storage;
use actix_web::web::{Bytes, Data, Path, Query};
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// List a user's logins (refresh-token families), oldest first (at most the newest 500).
#[utoipa::path(get, path = "/admin/v1/users/{user_id}/sessions", tag = "sessions",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user's families", body = Vec<FamilyView>),
        (status = 400, description = "Not a user id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_sessions(
    _: AdminCaller,
    storage: Data<dyn Storage>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = users::by_id(&**storage, &id).await?;
    let now = chrono::Utc::now();
    let families: Vec<_> = sessions::list(&**storage, &user).await?.iter().map(|f| FamilyView::new(f, now)).collect();
    Ok(HttpResponse::Ok().json(families))
}

/// Revoke every login of a user and end their SSO sessions.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/sessions", tag = "sessions",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "How many families were revoked", body = Revoked),
        (status = 400, description = "Not a user id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_sessions(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    events: Data<Emitter>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let user = users::by_id(&**storage, &id).await?;
        Ok(sessions::revoke_all(&**storage, &events, &user).await?)
    }
    .await;
    let revoked = audited(&caller, "session_revoke_all", &id, result)?;
    Ok(HttpResponse::Ok().json(Revoked { revoked }))
}

/// Revoke one login (refresh-token family).
#[utoipa::path(delete, path = "/admin/v1/sessions/{family_id}", tag = "sessions",
    params(("family_id" = String, Path, description = "The family's id")),
    responses(
        (status = 204, description = "Revoked (also when it was already)"),
        (status = 400, description = "Not a family id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such family", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_session(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    events: Data<Emitter>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result = sessions::revoke_family(&**storage, &events, &id).await.map_err(ApiError::from);
    audited(&caller, "session_revoke", &id, result)?;
    Ok(HttpResponse::NoContent().finish())
}

/// List signing keys (public data only).
#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys",
    responses(
        (status = 200, description = "The signing keys", body = Vec<KeyView>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_keys(_: AdminCaller, storage: Data<dyn Storage>) -> Result<HttpResponse, ApiError> {
    let keys: Vec<_> = keys::list(&**storage).await?.iter().map(KeyView::from).collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// The steps a rotation took.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotation {
    pub steps: Vec<StepView>,
}

/// Run the next rotation step now: publish a next key, or (once verifiers have had time
/// to cache it) make it sign and retire the current one. Every replica picks the change
/// up within `keys.refresh_interval`.
#[utoipa::path(post, path = "/admin/v1/keys/rotate", tag = "keys",
    responses(
        (status = 200, description = "The steps taken", body = Rotation),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_keys(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    settings: Data<AdminSettings>,
) -> Result<HttpResponse, ApiError> {
    rotate(caller, storage, settings, false).await
}

/// The current key is compromised: a new key signs at once and the old one is deleted;
/// every token it signed stops verifying (the admin token used for this call too).
#[utoipa::path(post, path = "/admin/v1/keys/emergency-rotate", tag = "keys",
    responses(
        (status = 200, description = "The steps taken", body = Rotation),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn emergency_rotate_keys(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    settings: Data<AdminSettings>,
) -> Result<HttpResponse, ApiError> {
    rotate(caller, storage, settings, true).await
}

async fn rotate(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    settings: Data<AdminSettings>,
    emergency: bool,
) -> Result<HttpResponse, ApiError> {
    let result = keys::rotate(&**storage, &settings.kek, &settings.schedule, emergency).await.map_err(ApiError::from);
    let action = if emergency { "keys_rotate_emergency" } else { "keys_rotate" };
    let steps = audited(&caller, action, "", result)?;
    Ok(HttpResponse::Ok().json(Rotation { steps: steps.iter().map(StepView::from).collect() }))
}

/// `?receiver=&limit=&cursor=` of the stream list (the paging of [`PageQuery`]).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only the streams of this receiver (client id).
    pub receiver: Option<String>,
    /// Items per page, 1 to 200 (50 when not given).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// A page of streams, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamPage {
    pub items: Vec<StreamView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next: Option<String>,
}

/// List Shared Signals streams, all or one receiver's, a page at a time.
#[utoipa::path(get, path = "/admin/v1/streams", tag = "streams", params(StreamQuery),
    responses(
        (status = 200, description = "A page of streams", body = StreamPage),
        (status = 400, description = "Not a client id, or a bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_streams(
    _: AdminCaller,
    storage: Data<dyn Storage>,
    query: Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = PageQuery { limit: query.limit, cursor: query.cursor.clone() };
    let (limit, after) = paging.parse(CursorKind::Streams)?;
    let page = streams::list_page(&**storage, query.receiver.as_deref(), after.as_deref(), limit).await?;
    let items = page.items.iter().map(StreamView::from).collect();
    Ok(HttpResponse::Ok().json(StreamPage { items, next: cursor(CursorKind::Streams, page.next) }))
}

/// Show one stream.
#[utoipa::path(get, path = "/admin/v1/streams/{stream_id}", tag = "streams",
    params(("stream_id" = String, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "The stream", body = StreamView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show_stream(
    _: AdminCaller,
    storage: Data<dyn Storage>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let stream = streams::find(&**storage, &id).await?;
    Ok(HttpResponse::Ok().json(StreamView::from(&stream)))
}

/// Disable a stream: nothing more is delivered or held; its receiver is told first.
#[utoipa::path(post, path = "/admin/v1/streams/{stream_id}/disable", tag = "streams", request_body = DisableStream,
    params(("stream_id" = String, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "The stream, disabled (also when it was already)", body = StreamView),
        (status = 400, description = "Invalid reason", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn disable_stream(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    events: Data<Emitter>,
    id: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let request: DisableStream = optional_json_body(&body)?;
        streams::disable(&**storage, &events, &id, request.reason.as_deref()).await?;
        Ok(streams::find(&**storage, &id).await?)
    }
    .await;
    let stream = audited(&caller, "stream_disable", &id, result)?;
    Ok(HttpResponse::Ok().json(StreamView::from(&stream)))
}
