//! A small invoice service protected by Tessera's access tokens.
//!
//! It needs the `actix` feature (the extractor) and `fetch` (discovery, on by default):
//!
//! ```sh
//! TESSERA_ISSUER=http://127.0.0.1:8080 API_AUDIENCE=https://invoices.example.com \
//!     cargo run -p tessera-verify --features actix --example resource_server
//! ```
//!
//! Settings (environment variables, with their defaults):
//! - `TESSERA_ISSUER` (`http://127.0.0.1:8080`): the issuer, exactly as in `iss`;
//! - `API_AUDIENCE` (`https://invoices.example.com`): this service's audience;
//! - `BIND` (`127.0.0.1:8081`): where to listen;
//! - `SSF_CLIENT_ID`, `SSF_CLIENT_SECRET` (unset): with the `revocations` feature, a client
//!   with the scopes `ssf.manage ssf.read`, to refuse revoked tokens;
//! - `PUBLIC_URL` (unset): the URL clients reach this service at, e.g.
//!   `http://127.0.0.1:8081`; when set, DPoP-bound tokens (RFC 9449) are accepted with
//!   `Authorization: DPoP` and a proof for that URL;
//! - `INTROSPECTION_CLIENT_ID`, `INTROSPECTION_CLIENT_SECRET` (unset): a confidential
//!   client registered with this service's audience; when set, Tessera's opaque access
//!   tokens (`tat_…`) are accepted too, through token introspection (RFC 7662).
//!
//! Routes: `GET /invoices` needs `invoices:read`, `POST /invoices` needs
//! `invoices:write`, `GET /health` is public and lists the cached key ids (and the
//! revocation feed's state: 503 while it refuses tokens).

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use tessera_verify::actix::{AccessToken, BearerError};
use tessera_verify::Verifier;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let issuer = setting("TESSERA_ISSUER", "http://127.0.0.1:8080");
    let audience = setting("API_AUDIENCE", "https://invoices.example.com");
    let bind = setting("BIND", "127.0.0.1:8081");

    // Reads discovery and the JWKS now: a wrong issuer stops the service at startup.
    let builder = Verifier::builder(&issuer).audience(&audience);
    let builder = match std::env::var("PUBLIC_URL") {
        Ok(public_url) => builder.dpop(public_url),
        Err(_) => builder,
    };
    let builder = match (std::env::var("INTROSPECTION_CLIENT_ID"), std::env::var("INTROSPECTION_CLIENT_SECRET")) {
        (Ok(id), Ok(secret)) => builder.introspection(tessera_verify::Introspection::new(id, secret)),
        _ => builder,
    };
    #[cfg(feature = "revocations")]
    let builder = match (std::env::var("SSF_CLIENT_ID"), std::env::var("SSF_CLIENT_SECRET")) {
        (Ok(id), Ok(secret)) => builder.revocations(tessera_verify::Revocations::poll(id, secret)),
        _ => builder,
    };
    let verifier = builder.build().await.map_err(std::io::Error::other)?;
    eprintln!("verifying tokens of {issuer} for {audience}; listening on http://{bind}");

    let data = web::Data::new(verifier.clone());
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/invoices", web::get().to(list_invoices))
            .route("/invoices", web::post().to(create_invoice))
            .route("/health", web::get().to(health))
    })
    .bind(bind)?
    .run()
    .await?;
    // Deletes the revocation stream, so that restarts do not pile streams up at Tessera.
    #[cfg(feature = "revocations")]
    verifier.shutdown_revocations().await.map_err(std::io::Error::other)?;
    Ok(())
}

async fn list_invoices(token: AccessToken) -> Result<HttpResponse, BearerError> {
    token.require_scopes(&["invoices:read"])?;
    Ok(HttpResponse::Ok().json(json!({
        "client_id": token.claims().client_id,
        "subject": token.claims().sub,
        "invoices": [{ "id": "INV-0001", "amount": "120.00", "currency": "EUR" }],
    })))
}

async fn create_invoice(token: AccessToken) -> Result<HttpResponse, BearerError> {
    token.require_scopes(&["invoices:write"])?;
    Ok(HttpResponse::Created().json(json!({ "id": "INV-0002", "created_by": token.claims().client_id })))
}

async fn health(verifier: web::Data<Verifier>) -> HttpResponse {
    #[allow(unused_mut)]
    let mut health = json!({ "issuer": verifier.issuer(), "kids": verifier.key_ids() });
    #[cfg(feature = "revocations")]
    if let Some(status) = verifier.revocation_status() {
        health["revocations"] = json!({
            "state": format!("{:?}", status.state),
            "refusing_tokens": status.is_refusing,
            "deny_entries": status.deny_entries,
        });
        if status.is_refusing {
            return HttpResponse::ServiceUnavailable().json(health);
        }
    }
    HttpResponse::Ok().json(health)
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
