//! The protocol surface. One module per endpoint; the route table below is the index.

pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod client_keys;
pub mod cors;
pub mod device_authorization;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod par;
pub mod refresh_cookie;
pub mod revoke;
pub mod token;
pub mod userinfo;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web;

/// Below the issuer's path (`startup` mounts them there). The well-known documents are
/// here at their OpenID Connect Discovery §4 place (appended to the issuer), and RFC 8414's
/// too, as its §5 compatibility note allows; [`outside_the_path`] has RFC 8414's own.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/openid-configuration", web::get().to(discovery::get))
        .route("/.well-known/oauth-authorization-server", web::get().to(discovery::get))
        .route("/jwks.json", web::get().to(jwks::get))
        .route("/authorize", web::get().to(authorize::get))
        .route("/authorize", web::post().to(authorize::post))
        .service(
            web::resource("/userinfo")
                .wrap(from_fn(cors::allow_client_origin))
                .route(web::get().to(userinfo::get))
                .route(web::post().to(userinfo::get))
                .route(web::method(Method::OPTIONS).to(cors::preflight_userinfo)),
        )
        .service(
            web::resource("/token")
                .wrap(from_fn(cors::allow_client_origin_with_cookie))
                .route(web::post().to(token::post))
                .route(web::method(Method::OPTIONS).to(cors::preflight_token))
                .default_service(web::to(token::method_not_allowed)),
        )
        .service(
            web::resource("/par").route(web::post().to(par::post)).default_service(web::to(token::method_not_allowed)),
        )
        .service(
            web::resource("/device_authorization")
                .wrap(from_fn(cors::allow_client_origin))
                .route(web::post().to(device_authorization::post))
                .route(web::method(Method::OPTIONS).to(cors::preflight_device))
                .default_service(web::to(token::method_not_allowed)),
        )
        .service(
            web::resource("/revoke")
                .wrap(from_fn(cors::allow_client_origin_with_cookie))
                .route(web::post().to(revoke::post))
                .route(web::method(Method::OPTIONS).to(cors::preflight_token))
                .default_service(web::to(token::method_not_allowed)),
        )
        .service(
            web::resource("/introspect")
                .route(web::post().to(introspect::post))
                .default_service(web::to(token::method_not_allowed)),
        )
        .configure(health_routes);
}

fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz)).route("/readyz", web::get().to(health::readyz));
}

/// For an issuer under a path (`base`, e.g. `/auth`), what is served outside it, at the
/// root of the host: the RFC 8414 §3.1 metadata URL, which inserts the well-known suffix
/// between the host and the issuer's path (`/.well-known/oauth-authorization-server/auth`),
/// and the health checks, which orchestrators probe at fixed paths.
pub fn outside_the_path(cfg: &mut web::ServiceConfig, base: &str) {
    cfg.route(&format!("/.well-known/oauth-authorization-server{base}"), web::get().to(discovery::get))
        .configure(health_routes);
}
