//! RP-Initiated Logout as a browser does it: the confirmation page, then its form.

use super::browser::hidden_field;
use super::TestApp;

impl TestApp {
    /// GET /logout with `query`; when Tessera asks, posts its confirmation form (the
    /// fields it carries, its CSRF token included) as the Sign out button does.
    pub async fn log_out_confirmed(&self, query: &[(&str, &str)]) -> reqwest::Response {
        let page = self.http.get(self.url("/logout")).query(query).send().await.unwrap();
        if page.status() != 200 {
            return page;
        }
        let html = page.text().await.unwrap();
        assert!(html.contains("Sign out of Tessera?"), "the confirmation page: {html}");
        let mut form: Vec<(String, String)> = ["client_id", "post_logout_redirect_uri", "state", "csrf_token"]
            .into_iter()
            .filter_map(|name| hidden_field(&html, name).map(|value| (name.to_owned(), value)))
            .collect();
        form.push(("confirm".into(), "yes".into()));
        self.http.post(self.url("/logout")).form(&form).send().await.unwrap()
    }
}
