//! Prometheus metrics, served in the text exposition format on their own listener
//! (`metrics.bind`, off by default) so they are never on the public port by accident.
//!
//! One [`Metrics`] per server, with its own registry rather than the `prometheus` crate's
//! global one: the test suite runs many servers in one process, and each must count only
//! its own requests. Counters are bumped where things happen (a handler, the housekeeping
//! loop); gauges that describe state (pool, keys, password checks) are read when scraped,
//! through [`Metrics::render`]'s caller.
//!
//! Names and units follow the Prometheus conventions: a `tessera_` prefix, `_total` for
//! counters, `_seconds` for durations, base units only.

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// `route` is the route template (`/token`, `/ssf/streams`), never the raw path, so a
    /// stranger cannot mint label values; unmatched requests count under `unmatched`.
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// `grant` (authorization_code, refresh_token, client_credentials) × `kind`
    /// (access_token, id_token, refresh_token).
    pub tokens_issued: IntCounterVec,
    /// `outcome`: rotated, retried (a retry inside the window got the same successor),
    /// reuse_detected (the family was revoked), invalid.
    pub refresh_rotations: IntCounterVec,
    pub code_replays: IntCounter,
    /// Wrong user codes typed at the device verification page (RFC 8628 §5.1): a rise is
    /// someone guessing.
    pub device_user_code_failures: IntCounter,
    /// `outcome`: success, failure, locked (refused while locked out), busy (password checks
    /// at their bound).
    pub logins: IntCounterVec,
    pub housekeeping_purged: IntCounter,
    /// Back-Channel Logout Token POSTs by `outcome`: delivered, retry (will be sent again),
    /// dropped (refused for good, or no URI any more).
    pub backchannel_logout_deliveries: IntCounterVec,
    /// Read at scrape time.
    pub password_checks_in_flight: IntGauge,
    pub db_connections: IntGaugeVec,
    /// SQLite only: writes waiting for the one writer connection or running on it.
    pub db_writes_queued: IntGauge,
    pub signing_key_age: Gauge,
    pub next_rotation_step: Gauge,
    pub ssf_streams: IntGaugeVec,
    pub ssf_backlog: IntGauge,
    pub ssf_oldest_undelivered: Gauge,
    pub backchannel_logout_backlog: IntGauge,
    pub backchannel_logout_oldest_undelivered: Gauge,
    /// The issuer's path (`/auth`), taken off route templates so that a deployment under a
    /// path reports `/token` like one at the root, and one dashboard fits both.
    route_base: String,
}

/// Latency buckets from 0.5 ms to 10 s: a token costs about one RSA signature (~0.2 ms
/// on a core), a login one argon2id run (~50 ms).
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("tessera".into()), None).expect("a valid prefix");
        fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
            registry.register(Box::new(metric.clone())).expect("each metric is registered once");
            metric
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let build_info = register(
            &registry,
            GaugeVec::new(Opts::new("build_info", "Tessera's version; always 1"), &["version"]).expect("valid"),
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1.0);
        Self {
            http_requests: counter_vec(
                "http_requests_total",
                "HTTP requests answered, by route template, method and status",
                &["route", "method", "status"],
            ),
            http_duration: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("http_request_duration_seconds", "Time to answer an HTTP request")
                        .buckets(LATENCY_BUCKETS.to_vec()),
                    &["route", "method"],
                )
                .expect("valid metric"),
            ),
            tokens_issued: counter_vec(
                "tokens_issued_total",
                "Tokens issued at the token endpoint, by grant and token kind",
                &["grant", "kind"],
            ),
            refresh_rotations: counter_vec(
                "refresh_rotations_total",
                "Refresh-token presentations by outcome (rotated, retried, reuse_detected, invalid)",
                &["outcome"],
            ),
            code_replays: register(
                &registry,
                IntCounter::new("code_replays_total", "Authorization codes presented a second time").expect("valid"),
            ),
            backchannel_logout_deliveries: counter_vec(
                "backchannel_logout_deliveries_total",
                "Back-Channel Logout Token deliveries by outcome (delivered, retry, dropped)",
                &["outcome"],
            ),
            device_user_code_failures: register(
                &registry,
                IntCounter::new("device_user_code_failures_total", "Wrong user codes typed at the device page")
                    .expect("valid"),
            ),
            logins: counter_vec(
                "logins_total",
                "Password logins by outcome (success, failure, locked, busy)",
                &["outcome"],
            ),
            housekeeping_purged: register(
                &registry,
                IntCounter::new("housekeeping_purged_rows_total", "Expired rows deleted by housekeeping")
                    .expect("valid"),
            ),
            password_checks_in_flight: register(
                &registry,
                IntGauge::new(
                    "password_checks_in_flight",
                    "argon2id password checks admitted now, computing or waiting for a core",
                )
                .expect("valid"),
            ),
            db_connections: gauge_vec(
                "db_pool_connections",
                "Database pool connections by state (in_use, idle, kept: idle, held for the next read)",
                &["state"],
            ),
            db_writes_queued: register(
                &registry,
                IntGauge::new(
                    "db_writes_queued",
                    "SQLite: writes waiting for the one writer connection or running on it (0 on PostgreSQL)",
                )
                .expect("valid"),
            ),
            signing_key_age: register(
                &registry,
                Gauge::new("signing_key_age_seconds", "Age of the key that signs now").expect("valid"),
            ),
            next_rotation_step: register(
                &registry,
                Gauge::new("signing_key_next_rotation_step_seconds", "Seconds until the next key rotation step")
                    .expect("valid"),
            ),
            ssf_streams: gauge_vec("ssf_streams", "Shared Signals streams by status", &["status"]),
            ssf_backlog: register(
                &registry,
                IntGauge::new("ssf_backlog_events", "Shared Signals events not yet acknowledged or delivered")
                    .expect("valid"),
            ),
            ssf_oldest_undelivered: register(
                &registry,
                Gauge::new(
                    "ssf_oldest_undelivered_event_age_seconds",
                    "Age of the oldest Shared Signals event not yet acknowledged or delivered (delivery lag)",
                )
                .expect("valid"),
            ),
            backchannel_logout_backlog: register(
                &registry,
                IntGauge::new(
                    "backchannel_logout_backlog_tokens",
                    "Back-channel Logout Tokens owed to clients, neither delivered nor given up",
                )
                .expect("valid"),
            ),
            backchannel_logout_oldest_undelivered: register(
                &registry,
                Gauge::new(
                    "backchannel_logout_oldest_undelivered_age_seconds",
                    "Age of the oldest Back-channel Logout Token not yet delivered (delivery lag)",
                )
                .expect("valid"),
            ),
            registry,
            route_base: String::new(),
        }
    }

    /// Route templates below `base` (the issuer's path, `""` at the root) are labelled
    /// without it.
    pub fn with_route_base(mut self, base: &str) -> Self {
        self.route_base = base.to_owned();
        self
    }

    /// Counts one answered request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let route = match route.strip_prefix(self.route_base.as_str()) {
            Some(rest) if !self.route_base.is_empty() && rest.starts_with('/') => rest,
            _ => route,
        };
        self.http_requests.with_label_values(&[route, method, &status.to_string()]).inc();
        self.http_duration.with_label_values(&[route, method]).observe(seconds);
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("writing to memory does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prometheus_conventions() {
        let metrics = Metrics::new();
        metrics.observe_request("/token", "POST", 200, 0.002);
        metrics.tokens_issued.with_label_values(&["client_credentials", "access_token"]).inc();
        let text = metrics.render();
        assert!(text.contains("tessera_http_requests_total{method=\"POST\",route=\"/token\",status=\"200\"} 1"));
        assert!(text.contains(
            "tessera_http_request_duration_seconds_bucket{method=\"POST\",route=\"/token\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains("tessera_tokens_issued_total{grant=\"client_credentials\",kind=\"access_token\"} 1"));
        assert!(text.contains(&format!("tessera_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let (name, kind) = line.trim_start_matches("# TYPE ").split_once(' ').unwrap();
            assert!(name.starts_with("tessera_"), "{name}");
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
        }
    }

    #[test]
    fn routes_below_the_issuer_path_are_labelled_without_it() {
        let metrics = Metrics::new().with_route_base("/auth");
        metrics.observe_request("/auth/token", "POST", 200, 0.002);
        metrics.observe_request("/.well-known/oauth-authorization-server/auth", "GET", 200, 0.002);
        metrics.observe_request("/authx", "GET", 404, 0.002);
        let text = metrics.render();
        assert!(text.contains(r#"tessera_http_requests_total{method="POST",route="/token",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"route="/.well-known/oauth-authorization-server/auth""#), "{text}");
        assert!(text.contains(r#"route="/authx""#), "{text}");
    }

    /// The sample dashboard (`deploy/grafana/tessera-dashboard.json`) queries only metrics
    /// this registry exports, so renaming one here fails until the dashboard follows.
    #[test]
    fn the_grafana_dashboard_queries_only_exported_metrics() {
        let metrics = Metrics::new();
        // Vectors are exported once they have a child: give each one.
        metrics.observe_request("/token", "POST", 200, 0.002);
        metrics.tokens_issued.with_label_values(&["client_credentials", "access_token"]).inc();
        metrics.refresh_rotations.with_label_values(&["rotated"]).inc();
        metrics.logins.with_label_values(&["success"]).inc();
        metrics.db_connections.with_label_values(&["idle"]).set(1);
        metrics.ssf_streams.with_label_values(&["enabled"]).set(1);
        let text = metrics.render();
        let mut exported = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let (name, kind) = line.trim_start_matches("# TYPE ").split_once(' ').unwrap();
            exported.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    exported.insert(format!("{name}{suffix}"));
                }
            }
        }
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../deploy/grafana/tessera-dashboard.json")).unwrap();
        let mut queried = Vec::new();
        let panels = dashboard["panels"].as_array().unwrap();
        for target in panels.iter().filter_map(|p| p["targets"].as_array()).flatten() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(start) = rest.find("tessera_") {
                let tail = &rest[start..];
                let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
                queried.push(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
        assert!(queried.len() >= 15, "the dashboard's queries were found: {queried:?}");
        for name in &queried {
            assert!(exported.contains(name), "the dashboard queries {name}, which Tessera does not export");
        }
    }
}
