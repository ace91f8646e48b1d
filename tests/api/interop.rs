//! An independent OAuth client library (the `oauth2` crate) talking to Tessera.

use crate::helpers::clients::ClientSpec;
use crate::helpers::TestApp;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};

fn http_client() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap()
}

async fn the_oauth2_crate_obtains_a_client_credentials_token(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let oauth = BasicClient::new(ClientId::new(client.id.clone()))
        .set_client_secret(ClientSecret::new(client.secret().to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/token")).unwrap());
    let token = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("invoices:read".into()))
        .request_async(&http_client())
        .await
        .expect("the oauth2 crate accepts the token response");
    assert_eq!(token.expires_in(), Some(std::time::Duration::from_secs(300)));
    assert_eq!(token.scopes().map(|s| s.len()), Some(1));
    app.verify_access_token(token.access_token().secret(), "https://api.example.com").await;
}

async fn the_oauth2_crate_understands_tessera_errors(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let oauth = BasicClient::new(ClientId::new(client.id.clone()))
        .set_client_secret(ClientSecret::new("tcs_wrong".into()))
        .set_token_uri(TokenUrl::new(app.url("/token")).unwrap());
    match oauth.exchange_client_credentials().request_async(&http_client()).await {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(error.error(), &BasicErrorResponseType::InvalidClient)
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
    let oauth = BasicClient::new(ClientId::new(client.id.clone()))
        .set_client_secret(ClientSecret::new(client.secret().to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/token")).unwrap());
    match oauth.exchange_client_credentials().add_scope(Scope::new("admin".into())).request_async(&http_client()).await
    {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(error.error(), &BasicErrorResponseType::InvalidScope)
        }
        other => panic!("expected invalid_scope, got {other:?}"),
    }
}

crate::backend_tests!(the_oauth2_crate_obtains_a_client_credentials_token, the_oauth2_crate_understands_tessera_errors);
