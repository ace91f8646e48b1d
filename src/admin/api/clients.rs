//! `/admin/v1/clients`: list, register, show, change, disable, rotate a secret.

use super::auth::AdminCaller;
use super::problem::{ApiError, Problem};
use super::{audited, cursor, json_body, AdminSettings, CursorKind, PageQuery};
use crate::admin::clients::{self, ClientPatch, ClientView, ClientWithSecret, NewClient};
use crate::domain::client::ClientId;
use crate::signals::Emitter;
use crate::storage::client_cache::ClientCache;
use crate::storage::Storage;
use actix_web::web::{Bytes, Data, Path, Query};
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// A page of clients, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next: Option<String>,
}

/// This replica's cached registration is dropped at once, so a disabled client or a
/// rotated-out secret stops working here now (other replicas within `client_cache_ttl`).
fn forget(cache: &ClientCache, id: &str) {
    if let Ok(id) = ClientId::parse(id) {
        cache.forget(&id);
    }
}

/// List clients.
#[utoipa::path(get, path = "/admin/v1/clients", tag = "clients", params(PageQuery),
    responses(
        (status = 200, description = "A page of clients", body = ClientPage),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    _: AdminCaller,
    storage: Data<dyn Storage>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = query.parse(CursorKind::Clients)?;
    let page = clients::list_page(&**storage, after.as_deref(), limit).await?;
    let items = page.items.iter().map(ClientView::from).collect();
    Ok(HttpResponse::Ok().json(ClientPage { items, next: cursor(CursorKind::Clients, page.next) }))
}

/// Register a client; a confidential client's secret is in the response, once.
#[utoipa::path(post, path = "/admin/v1/clients", tag = "clients", request_body = NewClient,
    responses(
        (status = 201, description = "Registered", body = ClientWithSecret),
        (status = 400, description = "Invalid registration; `field` names the member", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    settings: Data<AdminSettings>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let new: NewClient = json_body(&body)?;
        let (client, secret) = clients::create(&**storage, settings.outbound, new).await?;
        Ok((client, secret))
    }
    .await;
    let target = result.as_ref().map(|(c, _)| c.id.as_str().to_owned()).unwrap_or_default();
    let (client, secret) = audited(&caller, "client_create", &target, result)?;
    let view =
        ClientWithSecret { client: ClientView::from(&client), client_secret: secret.map(|s| s.expose().to_owned()) };
    Ok(HttpResponse::Created().insert_header(("Cache-Control", "no-store")).json(view))
}

/// Show a client.
#[utoipa::path(get, path = "/admin/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 400, description = "Not a client id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show(_: AdminCaller, storage: Data<dyn Storage>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let client = clients::find(&**storage, &id).await?;
    Ok(HttpResponse::Ok().json(ClientView::from(&client)))
}

/// Change a client's registration (the members given).
#[utoipa::path(patch, path = "/admin/v1/clients/{client_id}", tag = "clients", request_body = ClientPatch,
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client as changed", body = ClientView),
        (status = 400, description = "Invalid change; `field` names the member", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    cache: Data<ClientCache>,
    id: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let patch: ClientPatch = json_body(&body)?;
        Ok(clients::update(&**storage, &id, patch).await?)
    }
    .await;
    forget(&cache, &id);
    let client = audited(&caller, "client_update", &id, result)?;
    Ok(HttpResponse::Ok().json(ClientView::from(&client)))
}

/// Disable a client: its token requests are refused and every token it holds stops
/// being live; Shared Signals receivers are told.
#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/disable", tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client, disabled (also when it was already)", body = ClientView),
        (status = 400, description = "Not a client id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn disable(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    events: Data<Emitter>,
    cache: Data<ClientCache>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        clients::disable(&**storage, &events, &id).await?;
        Ok(clients::find(&**storage, &id).await?)
    }
    .await;
    forget(&cache, &id);
    let client = audited(&caller, "client_disable", &id, result)?;
    Ok(HttpResponse::Ok().json(ClientView::from(&client)))
}

/// Replace a confidential client's secret: the old one stops working now; the new one is
/// in the response, once.
#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/secret", tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client and its new secret", body = ClientWithSecret),
        (status = 400, description = "Not a client id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks tessera:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The client has no secret (public or private_key_jwt)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_secret(
    caller: AdminCaller,
    storage: Data<dyn Storage>,
    cache: Data<ClientCache>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result = clients::rotate_secret(&**storage, &id).await.map_err(ApiError::from);
    forget(&cache, &id);
    let (client, secret) = audited(&caller, "client_rotate_secret", &id, result)?;
    let view = ClientWithSecret { client: ClientView::from(&client), client_secret: Some(secret.expose().to_owned()) };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(view))
}
