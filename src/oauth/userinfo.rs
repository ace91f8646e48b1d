//! UserInfo endpoint (OpenID Connect Core §5.3), GET and POST, with a Bearer access token
//! (RFC 6750 §2.1). Claims by scope per §5.4. Errors per RFC 6750 §3.

use super::error::BearerError;
use crate::domain::user::UserId;
use crate::http::bearer::bearer_token;
use crate::storage::Storage;
use crate::tokens::live::live_access_token;
use crate::tokens::TokenIssuer;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

pub async fn get(
    req: HttpRequest,
    storage: web::Data<dyn Storage>,
    issuer: web::Data<TokenIssuer>,
) -> Result<HttpResponse, BearerError> {
    let token = bearer_token(&req)?;
    let claims = live_access_token(token, &**storage, &issuer)
        .await?
        .ok_or(BearerError::InvalidToken("the access token is invalid, expired or revoked"))?;
    if !claims.scope.contains("openid") {
        return Err(BearerError::InsufficientScope("openid"));
    }
    // A live token's `sub` is a user id or, for client credentials, the client's id.
    let user = match UserId::parse(&claims.sub) {
        Ok(user_id) => storage.find_user_by_id(&user_id).await?,
        Err(_) => None,
    };
    let Some(user) = user else {
        return Err(BearerError::InvalidToken("the access token is not a user's"));
    };
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.id.as_str()));
    if claims.scope.contains("profile") {
        body.insert("preferred_username".into(), json!(user.username.as_str()));
        if let Some(name) = &user.name {
            body.insert("name".into(), json!(name));
        }
        body.insert("updated_at".into(), json!(user.updated_at.timestamp()));
    }
    if claims.scope.contains("email") {
        if let Some(email) = &user.email {
            body.insert("email".into(), json!(email));
            body.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(Value::Object(body)))
}
