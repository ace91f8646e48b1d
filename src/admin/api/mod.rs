//! The admin REST API (`/admin/v1/…`, JSON): what the `tessera` operator commands do,
//! for scripts and consoles. Every operation calls the service layer (`admin::*`), every
//! change is an `admin_change` audit event naming the admin client as its actor, and
//! every error is an RFC 9457 problem. The OpenAPI 3.1 document is generated from these
//! handlers and types (`utoipa`) and served at `/admin/openapi.json`.

mod auth;
mod clients;
mod operations;
pub mod problem;
mod users;

use crate::keys::kek::KeyEncryptionKey;
use crate::keys::rotation::RotationSchedule;
use crate::tokens::TokenIssuer;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::web::{self, Data};
use actix_web::HttpResponse;
use auth::AdminCaller;
use base64::Engine;
use problem::{ApiError, Problem};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::Server;
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// Largest request body: the largest member is a JWK Set of at most 16 KB.
const BODY_LIMIT: usize = 64 * 1024;
/// Page size when `limit` is not given, and the largest allowed.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// What the API needs beyond the server's shared state: the key-encryption key and
/// schedule for key rotation, and where the URLs clients register may point.
pub struct AdminSettings {
    pub kek: Arc<KeyEncryptionKey>,
    pub schedule: RotationSchedule,
    pub outbound: crate::admin::clients::UrlPolicies,
    /// `http.trust_forwarded_headers`: the client IP of the audit events.
    pub trust_forwarded_headers: bool,
}

/// Which listener serves the API (`admin.listen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiListener {
    /// The public one, below the issuer's path: the OpenAPI document's server is the
    /// issuer.
    Public,
    /// One of its own, at its root: the document's server is `/`, relative to where it was
    /// fetched (OpenAPI 3.1 §4.8.5), since no setting names that listener's URL; and the
    /// client IP of audit events is the peer's, whatever `http.trust_forwarded_headers`
    /// says, since that listener is reached directly, not through the public proxy.
    Own,
}

/// The admin routes: `/admin/openapi.json` and `/admin/v1/…`.
pub fn routes(cfg: &mut web::ServiceConfig, server: ApiListener) {
    cfg.service(
        web::scope("/admin")
            .wrap(ErrorHandlers::new().default_handler(problem::from_framework))
            .app_data(Data::new(server))
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                ApiError::bad_request(format!("the query string is not valid: {error}")).into()
            }))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|error, _| ApiError::bad_request(format!("the path is not valid: {error}")).into()),
            )
            .route("/openapi.json", web::get().to(openapi))
            .service(
                web::scope("/v1")
                    // Registrations, users and sessions are nobody's to cache on the way.
                    .wrap(DefaultHeaders::new().add((CACHE_CONTROL, "no-store")))
                    .service(
                        web::resource("/clients")
                            .route(web::get().to(clients::list))
                            .route(web::post().to(clients::create)),
                    )
                    .service(
                        web::resource("/clients/{client_id}")
                            .route(web::get().to(clients::show))
                            .route(web::patch().to(clients::update)),
                    )
                    .route("/clients/{client_id}/disable", web::post().to(clients::disable))
                    .route("/clients/{client_id}/secret", web::post().to(clients::rotate_secret))
                    .service(
                        web::resource("/users").route(web::get().to(users::list)).route(web::post().to(users::create)),
                    )
                    .service(
                        web::resource("/users/{user_id}")
                            .route(web::get().to(users::show))
                            .route(web::patch().to(users::update)),
                    )
                    .route("/users/{user_id}/disable", web::post().to(users::disable))
                    .route("/users/{user_id}/enable", web::post().to(users::enable))
                    .route("/users/{user_id}/password", web::put().to(users::set_password))
                    .service(
                        web::resource("/users/{user_id}/sessions")
                            .route(web::get().to(operations::list_sessions))
                            .route(web::delete().to(operations::revoke_sessions)),
                    )
                    .route("/sessions/{family_id}", web::delete().to(operations::revoke_session))
                    .route("/keys", web::get().to(operations::list_keys))
                    .route("/keys/rotate", web::post().to(operations::rotate_keys))
                    .route("/keys/emergency-rotate", web::post().to(operations::emergency_rotate_keys))
                    .route("/streams", web::get().to(operations::list_streams))
                    .route("/streams/{stream_id}", web::get().to(operations::show_stream))
                    .route("/streams/{stream_id}/disable", web::post().to(operations::disable_stream)),
            ),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera admin API", description = "Clients, users, sessions, signing keys and Shared Signals streams of a Tessera authorization server. Authenticate with a client-credentials access token of Tessera holding the scope `tessera:admin`."),
    paths(
        clients::list, clients::create, clients::show, clients::update, clients::disable, clients::rotate_secret,
        users::list, users::create, users::show, users::update, users::disable, users::enable, users::set_password,
        operations::list_sessions, operations::revoke_sessions, operations::revoke_session,
        operations::list_keys, operations::rotate_keys, operations::emergency_rotate_keys,
        operations::list_streams, operations::show_stream, operations::disable_stream,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// `GET /admin/openapi.json`: the document, with the issuer as its server on the public
/// listener, so the paths resolve below the issuer's path when it has one
/// (`https://example.com/auth/admin/v1/…`), and `/` on the API's own listener.
async fn openapi(issuer: Data<TokenIssuer>, server: Data<ApiListener>) -> HttpResponse {
    let mut document = ApiDoc::openapi();
    let url = match **server {
        ApiListener::Public => issuer.issuer.as_str(),
        ApiListener::Own => "/",
    };
    document.servers = Some(vec![Server::new(url)]);
    HttpResponse::Ok().json(document)
}

/// The `bearer` security scheme every operation requires (RFC 6750).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A Tessera access token from client_credentials with the scope tessera:admin"))
                    .build(),
            ),
        );
    }
}

/// `?limit=&cursor=` of the list operations (keyset pagination: a cursor names the last
/// item seen, so pages neither skip nor repeat items when others are added meanwhile).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (50 when not given).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// A cursor's prefix: the kind of list it continues, so one list's cursor is refused by
/// another.
#[derive(Clone, Copy)]
enum CursorKind {
    Clients,
    Users,
    Streams,
}

impl CursorKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Clients => "clients:",
            Self::Users => "users:",
            Self::Streams => "streams:",
        }
    }
}

impl PageQuery {
    /// The limit and the decoded key to continue after.
    fn parse(&self, kind: CursorKind) -> Result<(u32, Option<String>), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest {
                field: Some("limit"),
                detail: format!("limit: must be 1 to {MAX_LIMIT}"),
            });
        }
        let after = match &self.cursor {
            None => None,
            Some(cursor) => {
                let refused = || ApiError::BadRequest {
                    field: Some("cursor"),
                    detail: "cursor: the cursor is not one this server gave".into(),
                };
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| refused())?;
                let text = String::from_utf8(bytes).map_err(|_| refused())?;
                Some(text.strip_prefix(kind.prefix()).ok_or_else(refused)?.to_owned())
            }
        };
        Ok((limit, after))
    }
}

fn cursor(kind: CursorKind, key: Option<String>) -> Option<String> {
    key.map(|key| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}{key}", kind.prefix())))
}

/// Parses a JSON request body; anything else is a 400 problem.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not the expected JSON: {e}")))
}

/// A body that may be empty (operations whose body is optional).
fn optional_json_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        json_body(body)
    }
}

/// Records the `admin_change` audit event of a change made by `caller`, with its outcome,
/// and passes the result on. The request id comes from the request's span.
fn audited<T>(
    caller: &AdminCaller,
    action: &'static str,
    target: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let actor = caller.client_id.as_str();
    match &result {
        Ok(_) => crate::audit!(info, "admin_change", "success", actor = %actor, action, target = %target),
        Err(ApiError::Unexpected(_)) => {
            crate::audit!(warn, "admin_change", "error", actor = %actor, action, target = %target)
        }
        Err(_) => crate::audit!(info, "admin_change", "failure", actor = %actor, action, target = %target),
    }
    result
}

/// The number of refresh-token families a revocation ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: u64,
}
