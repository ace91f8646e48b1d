//! Turns a run directory into `latest.md` and `latest.json`: every number comes from
//! files written during the same run, and every ratio divides two numbers measured on
//! this machine in that run.

use anyhow::Context;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::Path;

mod growth;

/// The load steps of one backend leg, in report order: file stem, title, RSA operations
/// per request ("sign" or "verify"), and how many.
const SCENARIOS: &[(&str, &str, &str, u32)] = &[
    ("cc", "1. `client_credentials` token", "sign", 1),
    ("cc-half", "1b. `client_credentials` at half the peak rate", "sign", 1),
    ("refresh", "2. refresh rotation, OAuth (`offline_access api:read`: access token)", "sign", 1),
    ("refresh-openid", "2b. refresh rotation, OIDC (`openid …`: access + ID token)", "sign", 2),
    ("code", "3. authorization-code exchange (`openid api:read`: access + ID token)", "sign", 2),
    ("introspect", "4. introspection of a valid access token", "verify", 1),
    ("jwks", "5a. `GET /jwks.json`", "", 0),
    ("discovery", "5b. `GET /.well-known/openid-configuration`", "", 0),
];

pub(crate) const LEGS: &[(&str, &str)] = &[("sqlite", "SQLite"), ("postgres", "PostgreSQL")];

pub(crate) fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// `key=value` lines.
pub(crate) fn read_kv(path: &Path) -> Map<String, Value> {
    let mut map = Map::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        for line in text.lines() {
            if let Some((key, value)) = line.split_once('=') {
                let value = value.trim();
                let parsed = match (value.parse::<i64>(), value.parse::<f64>()) {
                    (Ok(n), _) => json!(n),
                    (_, Ok(x)) => json!(x),
                    _ => json!(value),
                };
                map.insert(key.trim().to_owned(), parsed);
            }
        }
    }
    map
}

pub(crate) fn num(value: &Value, key: &str) -> Option<f64> {
    value.get(key)?.as_f64()
}

pub(crate) fn fmt_rate(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

pub(crate) fn fmt_ms(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(crate) struct Check {
    name: String,
    target: String,
    measured: String,
    met: Option<bool>,
}

impl Check {
    pub(crate) fn new(name: String, target: String, measured: String, met: Option<bool>) -> Self {
        Self { name, target, measured, met }
    }

    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "**met**",
            Some(false) => "**missed**",
            None => "not measured",
        }
    }
}

pub fn write(dir: &Path, markdown_path: &Path, json_path: &Path) -> anyhow::Result<()> {
    let meta = read_kv(&dir.join("meta.txt"));
    // openssl runs at the start and at the end of the run; the higher rate of the two is
    // the baseline (the conservative choice: a busier moment only lowers the limit).
    let (multi, multi_runs) = best_of(dir, "openssl-multi").context("openssl-multi*.json is missing")?;
    let (single, single_runs) = best_of(dir, "openssl-single").context("openssl-single*.json is missing")?;
    let node = read_json(&dir.join("node/cc.json"));
    let node_meta = read_kv(&dir.join("node/meta.txt"));
    let verify = read_json(&dir.join("verify.json"));
    let sign = num(&multi, "sign_per_s").context("sign_per_s")?;
    let verify_multi = num(&multi, "verify_per_s").context("verify_per_s")?;
    let verify_single = num(&single, "verify_per_s").context("verify_per_s")?;
    let node_rps = node.as_ref().and_then(|n| num(n, "rps"));
    let awslc = read_json(&dir.join("awslc.json"));
    let awslc_sign = awslc.as_ref().and_then(|a| num(a, "sign_per_s"));

    let mut legs = Map::new();
    for (key, _) in LEGS {
        let leg_dir = dir.join(key);
        let mut leg = Map::new();
        if let Ok(reason) = std::fs::read_to_string(leg_dir.join("skipped.txt")) {
            leg.insert("skipped".into(), json!(reason.trim()));
        }
        // The login scenario (issue 16) has its own section, not a row of the table.
        for stem in SCENARIOS.iter().map(|(stem, ..)| *stem).chain(["login"]) {
            if let Some(value) = read_json(&leg_dir.join(format!("{stem}.json"))) {
                leg.insert(stem.into(), value);
            }
        }
        leg.insert("memory".into(), Value::Object(read_kv(&leg_dir.join("memory.txt"))));
        legs.insert((*key).into(), Value::Object(leg));
    }

    // Targets from the issue, evaluated per backend where they depend on it.
    let mut checks = Vec::new();
    for (key, name) in LEGS {
        let leg = &legs[*key];
        let cc = leg.get("cc");
        let cc_rps = cc.and_then(|v| num(v, "rps"));
        checks.push(ratio_check(format!("`client_credentials` rate, {name}"), cc_rps, sign, 0.75, "raw sign/s"));
        let half = leg.get("cc-half");
        checks.push(Check {
            name: format!("`client_credentials` p99 at half the peak rate, {name}"),
            target: "< 10 ms".into(),
            measured: half
                .and_then(|h| Some(format!("{} ms at {} req/s", fmt_ms(num(h, "p99_ms")?), fmt_rate(num(h, "rps")?))))
                .unwrap_or_else(|| "—".into()),
            met: half.and_then(|h| num(h, "p99_ms")).map(|p99| p99 < 10.0),
        });
        checks.push(match (cc_rps, node_rps) {
            (Some(ours), Some(theirs)) => Check {
                name: format!("`client_credentials` vs node-oidc-provider, {name}"),
                target: "≥ 1.5 ×".into(),
                measured: format!("{:.2} × ({} vs {} req/s)", ours / theirs, fmt_rate(ours), fmt_rate(theirs)),
                met: Some(ours / theirs >= 1.5),
            },
            _ => Check {
                name: format!("`client_credentials` vs node-oidc-provider, {name}"),
                target: "≥ 1.5 ×".into(),
                measured: "—".into(),
                met: None,
            },
        });
        let wanted = if *key == "postgres" { 0.4 } else { 0.3 };
        let refresh = leg.get("refresh");
        let mut check = ratio_check(
            format!("refresh rotation rate, {name}, zero errors"),
            refresh.and_then(|r| num(r, "rps")),
            sign,
            wanted,
            "raw sign/s",
        );
        if let Some(errors) = refresh.and_then(|r| num(r, "errors")) {
            check.measured = format!("{}, {errors:.0} errors", check.measured);
            check.met = check.met.map(|met| met && errors == 0.0);
        }
        checks.push(check);
        let memory = leg.get("memory");
        let mib = |field: &str| memory.and_then(|m| num(m, field)).map(|kib| kib / 1024.0);
        checks.push(Check {
            name: format!("idle RSS, {name}"),
            target: "< 30 MiB".into(),
            measured: mib("idle_rss_kib").map(|m| format!("{m:.1} MiB")).unwrap_or_else(|| "—".into()),
            met: mib("idle_rss_kib").map(|m| m < 30.0),
        });
        checks.push(Check {
            name: format!("peak RSS under load, {name}"),
            target: "< 150 MiB".into(),
            measured: mib("peak_rss_kib").map(|m| format!("{m:.1} MiB")).unwrap_or_else(|| "—".into()),
            met: mib("peak_rss_kib").map(|m| m < 150.0),
        });
    }
    let verify_one = verify.as_ref().and_then(|v| {
        v["runs"].as_array()?.iter().find(|r| r["threads"] == 1).and_then(|r| num(r, "verifier_per_thread"))
    });
    checks.push(ratio_check(
        "`tessera-verify` per core (1 thread) vs openssl single-core verify/s".into(),
        verify_one,
        verify_single,
        0.8,
        "openssl verify/s",
    ));

    // Issue 16: how cost grows (big tables, logins, the long run, two replicas).
    let (growth_json, growth_md) = growth::sections(dir, &legs, &mut checks)?;

    let checks_json: Vec<Value> = checks
        .iter()
        .map(|c| json!({ "name": c.name, "target": c.target, "measured": c.measured, "met": c.met }))
        .collect();
    let document = json!({
        "meta": meta,
        "baselines": { "openssl_multi": multi, "openssl_single": single,
                       "openssl_multi_runs": multi_runs, "openssl_single_runs": single_runs,
                       "awslc": awslc, "node_oidc_provider": node,
                       "node_oidc_provider_meta": node_meta },
        "legs": legs,
        "verify": verify,
        "targets": checks_json,
        "growth": growth_json,
    });
    std::fs::write(json_path, serde_json::to_string_pretty(&document)? + "\n")?;

    // The Markdown page.
    let m = |key: &str| meta.get(key).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
    let get = |key: &str| m(key).unwrap_or_else(|| "?".into());
    let mut md = String::new();
    writeln!(md, "# Benchmark results\n")?;
    writeln!(
        md,
        "Run **{}** on this machine ({}, {} cores, Linux {}); Tessera commit `{}`. \
         Produced by `bash bench/run` in {} s. See `bench/README.md` for what each step does.\n",
        get("date"),
        get("cpu"),
        get("cores"),
        get("kernel"),
        get("commit"),
        get("total_seconds"),
    )?;
    writeln!(
        md,
        "Every load step: {} connections, {} s warm-up then {} s measured, from a {}-thread load generator \
         (`bench/load`) that runs on the same cores as the server. Tessera: release build, \
         `log.filter = \"{}\"`, {} HTTP workers (`http.workers = 0`: one per core), a pool of {} database \
         connections (`database.max_connections`). \
         Load average at start/end: {} / {}. The machine is shared, so compare ratios, not absolute rates.\n",
        get("connections"),
        get("warmup"),
        get("duration"),
        get("loadgen_threads"),
        get("log_filter"),
        get("http_workers"),
        get("db_max_connections"),
        get("loadavg_start"),
        get("loadavg_end"),
    )?;

    // The two openssl runs bracket the whole run: if they disagree, something else used
    // the cores meanwhile, and every number in between is suspect.
    let signs: Vec<f64> = multi_runs.iter().filter_map(|r| num(r, "sign_per_s")).collect();
    if let (Some(low), Some(high)) = (signs.iter().copied().reduce(f64::min), signs.iter().copied().reduce(f64::max)) {
        if high > 0.0 && (high - low) / high > 0.1 {
            writeln!(
                md,
                "> **Noisy run:** the all-core openssl sign rate was {} at the start and {} at the end \
                 ({:.0} % apart): other work shared the cores during this run. Rerun on a quieter machine \
                 before drawing conclusions.\n",
                fmt_rate(num(&multi_runs[0], "sign_per_s").unwrap_or(0.0)),
                fmt_rate(num(multi_runs.last().unwrap(), "sign_per_s").unwrap_or(0.0)),
                (high - low) / high * 100.0
            )?;
        }
    }
    writeln!(md, "## Baselines (same run)\n")?;
    writeln!(md, "| Baseline | when | sign/s | verify/s |\n|---|---|---:|---:|")?;
    for (runs, scope) in [(&multi_runs, "all cores"), (&single_runs, "one core")] {
        for run in runs {
            writeln!(
                md,
                "| `{}` ({scope}) | {} | {} | {} |",
                run["command"].as_str().unwrap_or("openssl"),
                run["when"].as_str().unwrap_or(""),
                fmt_rate(num(run, "sign_per_s").unwrap_or(0.0)),
                fmt_rate(num(run, "verify_per_s").unwrap_or(0.0)),
            )?;
        }
    }
    if let Some(a) = &awslc {
        writeln!(
            md,
            "| aws-lc-rs RSA-2048 (Tessera's crypto library), {} threads | start | {} | {} |",
            a["threads"],
            fmt_rate(num(a, "sign_per_s").unwrap_or(0.0)),
            fmt_rate(num(a, "verify_per_s").unwrap_or(0.0)),
        )?;
    }
    writeln!(
        md,
        "\nRatios use the higher of each pair: **{} sign/s** and {} verify/s on all cores, {} verify/s on one core.\n",
        fmt_rate(sign),
        fmt_rate(verify_multi),
        fmt_rate(verify_single)
    )?;
    match &node {
        Some(n) => writeln!(
            md,
            "node-oidc-provider {} (Node {}, {} cluster workers, in-memory adapter, JWT access tokens via \
             resource indicators), same `client_credentials` load: **{} req/s** (p50 {} ms, p99 {} ms, \
             {} errors) = {:.2} × raw sign/s.\n",
            node_meta.get("oidc_provider").and_then(Value::as_str).unwrap_or("?"),
            node_meta.get("node").and_then(Value::as_str).unwrap_or("?"),
            node_meta.get("workers").map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
            fmt_rate(num(n, "rps").unwrap_or(0.0)),
            fmt_ms(num(n, "p50_ms").unwrap_or(0.0)),
            fmt_ms(num(n, "p99_ms").unwrap_or(0.0)),
            num(n, "errors").unwrap_or(0.0),
            num(n, "rps").unwrap_or(0.0) / sign,
        )?,
        None => writeln!(md, "node-oidc-provider: not measured in this run.\n")?,
    }

    writeln!(md, "## Targets\n")?;
    writeln!(md, "| Target | Wanted | Measured | Result |\n|---|---|---|---|")?;
    for check in &checks {
        writeln!(md, "| {} | {} | {} | {} |", check.name, check.target, check.measured, check.verdict())?;
    }
    writeln!(md)?;

    writeln!(md, "## Scenarios\n")?;
    writeln!(
        md,
        "`RSA/req` is the number of RSA operations in one request; `× raw` divides req/s by the \
         all-core openssl rate of that operation (sign or verify); `× aws-lc` divides the RSA signatures \
         per second (req/s × signatures per request) by aws-lc's all-core sign rate, i.e. the share of \
         the machine's signing capacity that reached clients as tokens. Latency is measured per request \
         (from its scheduled time in the fixed-rate step); errors are non-2xx answers or transport failures.\n"
    )?;
    writeln!(
        md,
        "| Scenario | Backend | req/s | p50 ms | p99 ms | errors | RSA/req | × raw | × aws-lc | vs node |\n\
         |---|---|---:|---:|---:|---:|---|---:|---:|---:|"
    )?;
    for (stem, title, op, count) in SCENARIOS {
        for (key, name) in LEGS {
            let leg = &legs[*key];
            if let Some(skipped) = leg.get("skipped").and_then(Value::as_str) {
                if *stem == "cc" {
                    writeln!(md, "| (all) | {name} | skipped: {skipped} | | | | | | | |")?;
                }
                continue;
            }
            let Some(s) = leg.get(*stem) else {
                writeln!(md, "| {title} | {name} | not measured | | | | | | | |")?;
                continue;
            };
            let rps = num(s, "rps").unwrap_or(0.0);
            // A fixed-rate step runs at the rate it was given: no ratio to report.
            let fixed = s.get("target_rate").is_some_and(|r| !r.is_null());
            let raw = match *op {
                _ if fixed => "(fixed rate)".into(),
                "sign" => format!("{:.2}", rps / sign),
                "verify" => format!("{:.3}", rps / verify_multi),
                _ => "—".into(),
            };
            let share = match (*op, awslc_sign) {
                _ if fixed => "".into(),
                ("sign", Some(limit)) => format!("{:.2}", rps * *count as f64 / limit),
                _ => "—".into(),
            };
            let ops = if *count == 0 { "0".to_owned() } else { format!("{count} {op}") };
            let vs_node = match (*stem, node_rps) {
                ("cc", Some(theirs)) => format!("{:.2} ×", rps / theirs),
                _ => String::new(),
            };
            let mut errors = format!("{:.0}", num(s, "errors").unwrap_or(0.0));
            if s["exhausted"] == true {
                errors.push_str(" (codes ran out)");
            }
            writeln!(
                md,
                "| {title} | {name} | {} | {} | {} | {errors} | {ops} | {raw} | {share} | {vs_node} |",
                fmt_rate(rps),
                fmt_ms(num(s, "p50_ms").unwrap_or(0.0)),
                fmt_ms(num(s, "p99_ms").unwrap_or(0.0)),
            )?;
        }
    }
    writeln!(md)?;

    writeln!(md, "## Memory (RSS of the Tessera process)\n")?;
    writeln!(
        md,
        "| Backend | idle (after start) | peak (VmHWM, after all load steps) | after the load |\n|---|---:|---:|---:|"
    )?;
    for (key, name) in LEGS {
        let memory = legs[*key].get("memory");
        let mib = |field: &str| {
            memory
                .and_then(|m| num(m, field))
                .map(|kib| format!("{:.1} MiB", kib / 1024.0))
                .unwrap_or_else(|| "—".into())
        };
        writeln!(md, "| {name} | {} | {} | {} |", mib("idle_rss_kib"), mib("peak_rss_kib"), mib("after_rss_kib"))?;
    }
    writeln!(md)?;

    writeln!(md, "## `tessera-verify` in-process (scenario 6)\n")?;
    match &verify {
        Some(v) => {
            writeln!(
                md,
                "A token from this run's server, verified by `Verifier::verify` (key cached from the served JWKS) \
                 and, alternating in {:.1} s rounds, by the raw aws-lc RSA verification with the key parsed once.\n",
                0.2
            )?;
            writeln!(
                md,
                "| Threads | Verifier::verify per thread | raw aws-lc per thread | Verifier ÷ raw | Verifier ÷ openssl one-core verify/s |\n|---:|---:|---:|---:|---:|"
            )?;
            for run in v["runs"].as_array().into_iter().flatten() {
                let ours = num(run, "verifier_per_thread").unwrap_or(0.0);
                let raw = num(run, "raw_per_thread").unwrap_or(0.0);
                writeln!(
                    md,
                    "| {} | {} | {} | {:.2} | {:.2} |",
                    run["threads"],
                    fmt_rate(ours),
                    fmt_rate(raw),
                    ours / raw,
                    ours / verify_single
                )?;
            }
            writeln!(md)?;
        }
        None => writeln!(md, "Not measured in this run.\n")?,
    }

    let setups: Vec<String> = LEGS
        .iter()
        .filter_map(|(key, name)| {
            let code = legs[*key].get("code")?;
            Some(format!(
                "{name}: {} codes prepared in {:.1} s",
                code["setup"]["codes_prepared"],
                num(&code["setup"], "prepare_s").unwrap_or(0.0)
            ))
        })
        .collect();
    if !setups.is_empty() {
        writeln!(
            md,
            "Codes for scenario 3 were prepared through one password login and the SSO session \
             ({}); the exchange step stops early if they run out.\n",
            setups.join("; ")
        )?;
    }
    md.push_str(&growth_md);
    writeln!(md, "Raw numbers: `{}`.", json_path.display())?;
    std::fs::write(markdown_path, md)?;
    Ok(())
}

/// Reads `<stem>.json` (start of the run) and `<stem>-end.json` (end); returns the one
/// with the higher sign rate, combined with the higher verify rate, and both runs.
fn best_of(dir: &Path, stem: &str) -> Option<(Value, Vec<Value>)> {
    let mut runs = Vec::new();
    for (file, when) in [(format!("{stem}.json"), "start"), (format!("{stem}-end.json"), "end")] {
        if let Some(mut run) = read_json(&dir.join(file)) {
            run["when"] = json!(when);
            runs.push(run);
        }
    }
    let max = |key: &str| {
        runs.iter().filter_map(|r| num(r, key)).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    };
    let mut best = runs.first()?.clone();
    best["sign_per_s"] = json!(max("sign_per_s")?);
    best["verify_per_s"] = json!(max("verify_per_s")?);
    best["when"] = json!("max of start and end");
    Some((best, runs))
}

pub(crate) fn ratio_check(name: String, measured: Option<f64>, baseline: f64, wanted: f64, unit: &str) -> Check {
    match measured {
        Some(value) => Check {
            name,
            target: format!("≥ {wanted} × {unit}"),
            measured: format!("{:.2} × ({} vs {})", value / baseline, fmt_rate(value), fmt_rate(baseline)),
            met: Some(value / baseline >= wanted),
        },
        None => Check { name, target: format!("≥ {wanted} × {unit}"), measured: "—".into(), met: None },
    }
}
