//! Issue 16's sections: big tables, logins, the long run, two replicas. Each reads the
//! files its `bench/run` step wrote (absent files: the step did not run, and the section
//! says so) and adds its targets to the run's table.

use super::{fmt_ms, fmt_rate, num, ratio_check, read_json, read_kv, Check, LEGS};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::Path;

/// Big-table steps compared with the empty database's: file stem, title, the wanted
/// ratio (None: reported without a target).
const BIG_SCENARIOS: &[(&str, &str, Option<f64>)] = &[
    ("cc", "1. `client_credentials`", Some(0.9)),
    ("refresh", "2. refresh rotation", Some(0.9)),
    ("refresh-openid", "2b. refresh rotation with `openid`", Some(0.9)),
    ("code", "3. authorization-code exchange", Some(0.9)),
    ("introspect", "4. introspection", None),
    ("login", "8. password login", None),
];

/// Steps run against two replicas, compared with one process.
const REPLICA_SCENARIOS: &[(&str, &str)] = &[
    ("cc", "1. `client_credentials`"),
    ("refresh", "2. refresh rotation"),
    ("code", "3. authorization-code exchange"),
    ("introspect", "4. introspection"),
];

pub const LOGIN_TARGET: f64 = 0.8;
/// Successful logins' p99, in raw one-thread hash times, below which no queue built up.
/// With two checks per core each takes about two hash times; a queue of 32 connections in
/// front of 4 permits would make it about sixteen.
pub const QUEUE_FREE_HASHES: f64 = 8.0;

/// `measured / baseline` and whether it reaches `wanted` (the comparison every ratio
/// target of this report makes). None without both numbers or with a zero baseline.
pub fn ratio_against(measured: Option<f64>, baseline: Option<f64>, wanted: f64) -> Option<(f64, bool)> {
    let (measured, baseline) = (measured?, baseline?);
    if baseline <= 0.0 {
        return None;
    }
    let ratio = measured / baseline;
    Some((ratio, ratio >= wanted))
}

/// Excess logins are refused (429) rather than queued: some were refused, none failed,
/// refusals came back sooner than checks did (p99 against p99), and the checks that ran
/// did not wait in a queue (p99 under [`QUEUE_FREE_HASHES`] raw hash times). None when
/// nothing exceeded the bound or the hash time is unknown.
pub fn excess_refused(summary: &Value, ms_per_hash: Option<f64>) -> Option<bool> {
    let refused = num(summary, "refused")?;
    let ms_per_hash = ms_per_hash?;
    if refused == 0.0 {
        return None;
    }
    let p99 = num(summary, "p99_ms")?;
    Some(
        num(summary, "errors")? == 0.0
            && num(summary, "refused_p99_ms")? < p99
            && p99 < QUEUE_FREE_HASHES * ms_per_hash,
    )
}

/// The argon2id baseline: the run at the start and the one at the end, the faster one
/// (as with openssl: a busy moment can only lower the limit).
fn best_argon2(dir: &Path) -> Option<Value> {
    ["argon2.json", "argon2-end.json"]
        .iter()
        .filter_map(|file| read_json(&dir.join(file)))
        .max_by(|a, b| num(a, "per_s").unwrap_or(0.0).total_cmp(&num(b, "per_s").unwrap_or(0.0)))
}

pub fn sections(dir: &Path, legs: &Map<String, Value>, checks: &mut Vec<Check>) -> anyhow::Result<(Value, String)> {
    let mut md = String::new();
    let mut out = Map::new();

    // --- Big tables ---------------------------------------------------------------------
    let mut big_md = String::new();
    let mut any_big = false;
    for (key, name) in LEGS {
        let big_dir = dir.join(key).join("big");
        if !big_dir.is_dir() {
            continue;
        }
        any_big = true;
        let seed = read_kv(&big_dir.join("seed.txt"));
        let before = read_kv(&big_dir.join("rows-before.txt"));
        let after = read_kv(&big_dir.join("rows-after.txt"));
        let mut steps = Map::new();
        writeln!(
            big_md,
            "### {name}: seeded at scale {} in {} s, {} MiB\n",
            seed.get("seed_scale").map(Value::to_string).unwrap_or_else(|| "?".into()),
            seed.get("seed_seconds").map(Value::to_string).unwrap_or_else(|| "?".into()),
            seed.get("seed_db_bytes")
                .and_then(Value::as_f64)
                .map(|b| format!("{:.0}", b / 1048576.0))
                .unwrap_or_else(|| "?".into()),
        )?;
        writeln!(big_md, "| Scenario | empty req/s | big req/s | big ÷ empty | big p99 ms | big errors | target |\n|---|---:|---:|---:|---:|---:|---|")?;
        for (stem, title, wanted) in BIG_SCENARIOS {
            let empty = legs.get(*key).and_then(|l| l.get(*stem));
            let big = read_json(&big_dir.join(format!("{stem}.json")));
            let empty_rps = empty.and_then(|e| num(e, "rps"));
            let big_rps = big.as_ref().and_then(|b| num(b, "rps"));
            let ratio = ratio_against(big_rps, empty_rps, wanted.unwrap_or(0.0));
            let verdict = match (wanted, ratio) {
                (Some(w), Some((_, met))) => {
                    let mut check = ratio_check(
                        format!("{title} on the big database, {name}"),
                        big_rps,
                        empty_rps.unwrap_or(0.0),
                        *w,
                        "the empty database's rate",
                    );
                    check.met = Some(met);
                    checks.push(check);
                    format!("≥ {w} × {}", if met { "**met**" } else { "**missed**" })
                }
                (Some(w), None) => {
                    checks.push(Check::new(
                        format!("{title} on the big database, {name}"),
                        format!("≥ {w} × the empty database's rate"),
                        "—".into(),
                        None,
                    ));
                    "not measured".into()
                }
                (None, _) => "—".into(),
            };
            writeln!(
                big_md,
                "| {title} | {} | {} | {} | {} | {} | {verdict} |",
                empty_rps.map(fmt_rate).unwrap_or_else(|| "—".into()),
                big_rps.map(fmt_rate).unwrap_or_else(|| "—".into()),
                ratio.map(|(r, _)| format!("{r:.2}")).unwrap_or_else(|| "—".into()),
                big.as_ref().and_then(|b| num(b, "p99_ms")).map(fmt_ms).unwrap_or_else(|| "—".into()),
                big.as_ref().and_then(|b| num(b, "errors")).map(|e| format!("{e:.0}")).unwrap_or_else(|| "—".into()),
            )?;
            steps.insert((*stem).into(), json!({ "big": big, "ratio": ratio.map(|(r, _)| r) }));
        }
        writeln!(big_md)?;
        if !before.is_empty() {
            writeln!(
                big_md,
                "Rows before and after the big-table steps (housekeeping ran every `{}` during them):\n",
                seed.get("housekeeping_interval").and_then(Value::as_str).unwrap_or("?")
            )?;
            writeln!(big_md, "| Table | before | after |\n|---|---:|---:|")?;
            for (table, count) in &before {
                if table == "housekeeping_interval" {
                    continue;
                }
                writeln!(
                    big_md,
                    "| `{table}` | {count} | {} |",
                    after.get(table).map(Value::to_string).unwrap_or_default()
                )?;
            }
            writeln!(big_md)?;
        }
        if let Ok(explain) = std::fs::read_to_string(big_dir.join("explain.md")) {
            writeln!(
                big_md,
                "<details><summary>Query plans on the big {name} database</summary>\n\n{explain}\n</details>\n"
            )?;
        }
        out.insert(
            format!("big_{key}"),
            json!({ "seed": seed, "rows_before": before, "rows_after": after, "steps": steps }),
        );
    }
    writeln!(md, "## Big tables\n")?;
    if any_big {
        writeln!(
            md,
            "The same scenarios after `bench/seed` filled the database (1 M users, sessions and live token \
             families, 10 M used refresh tokens, 1 M rows due for purge at scale 1), with housekeeping \
             running during the load; each rate divided by the empty database's in the same run.\n"
        )?;
        md.push_str(&big_md);
    } else {
        writeln!(md, "Not run (`BENCH_BIG=1 bash bench/run`).\n")?;
    }

    // --- Logins -------------------------------------------------------------------------
    let argon2 = best_argon2(dir);
    let ms_per_hash = argon2.as_ref().and_then(|a| num(a, "ms_per_hash"));
    let argon2_rate = argon2.as_ref().and_then(|a| num(a, "per_s"));
    writeln!(md, "## Password logins\n")?;
    match &argon2 {
        Some(a) => writeln!(
            md,
            "Raw argon2id (the `argon2` crate, the parameters of the server's own hash: m = {} KiB, t = {}, \
             p = {}) on {} threads, the faster of the runs at the start and the end: **{} hashes/s** ({} ms \
             each). A login is `GET /authorize`, `POST /login` \
             with the password, and the 303 with a code; a 429 (the bound on concurrent password checks) is \
             counted apart and its `Retry-After` honoured.\n",
            a["params"]["m_kib"],
            a["params"]["t"],
            a["params"]["p"],
            a["threads"],
            fmt_rate(argon2_rate.unwrap_or(0.0)),
            fmt_ms(num(a, "ms_per_hash").unwrap_or(0.0)),
        )?,
        None => writeln!(md, "The argon2id baseline was not measured in this run.\n")?,
    }
    writeln!(md, "| Backend | logins/s | × raw argon2id | p50 ms | p99 ms | 429s | 429 p99 ms | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|")?;
    let mut logins = Map::new();
    for (key, name) in LEGS {
        let Some(login) = legs.get(*key).and_then(|l| l.get("login")) else {
            writeln!(md, "| {name} | not measured | | | | | | |")?;
            continue;
        };
        let rps = num(login, "rps");
        let ratio = ratio_against(rps, argon2_rate, LOGIN_TARGET);
        writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {:.0} | {} | {:.0} |",
            rps.map(fmt_rate).unwrap_or_default(),
            ratio.map(|(r, _)| format!("{r:.2}")).unwrap_or_else(|| "—".into()),
            fmt_ms(num(login, "p50_ms").unwrap_or(0.0)),
            fmt_ms(num(login, "p99_ms").unwrap_or(0.0)),
            num(login, "refused").unwrap_or(0.0),
            fmt_ms(num(login, "refused_p99_ms").unwrap_or(0.0)),
            num(login, "errors").unwrap_or(0.0),
        )?;
        checks.push(Check::new(
            format!("password logins, {name}"),
            format!("≥ {LOGIN_TARGET} × raw argon2id"),
            ratio
                .map(|(r, _)| {
                    format!(
                        "{r:.2} × ({} vs {}), p99 {} ms",
                        fmt_rate(rps.unwrap_or(0.0)),
                        fmt_rate(argon2_rate.unwrap_or(0.0)),
                        fmt_ms(num(login, "p99_ms").unwrap_or(0.0))
                    )
                })
                .unwrap_or_else(|| "—".into()),
            ratio.map(|(_, met)| met),
        ));
        checks.push(Check::new(
            format!("logins beyond the password-check bound, {name}"),
            format!("429s, sooner than checks (p99), no queue (p99 < {QUEUE_FREE_HASHES} hash times), no errors"),
            format!(
                "{:.0} × 429 (p99 {} ms), {:.0} errors",
                num(login, "refused").unwrap_or(0.0),
                fmt_ms(num(login, "refused_p99_ms").unwrap_or(0.0)),
                num(login, "errors").unwrap_or(0.0)
            ),
            excess_refused(login, ms_per_hash),
        ));
        logins.insert((*key).into(), json!({ "ratio": ratio.map(|(r, _)| r) }));
    }
    writeln!(md)?;
    out.insert("argon2".into(), argon2.clone().unwrap_or(Value::Null));
    out.insert("logins".into(), Value::Object(logins));

    // --- The long run -------------------------------------------------------------------
    writeln!(md, "## Long run (soak)\n")?;
    let mut any_soak = false;
    for (key, name) in LEGS {
        let Some(soak) = read_json(&dir.join(key).join("soak.json")) else { continue };
        any_soak = true;
        let verdict = &soak["rss_verdict"];
        let errors = num(&soak, "errors").unwrap_or(0.0);
        writeln!(
            md,
            "### {name}: {} minutes at {} req/s (half the even mix's peak of {} req/s; closed loop {} req/s), \
             {} connections\n",
            soak["minutes"].as_array().map_or(0, Vec::len),
            fmt_rate(num(&soak, "rate").unwrap_or(0.0)),
            fmt_rate(num(&soak, "even_mix_peak").unwrap_or(0.0)),
            fmt_rate(num(&soak["peak"], "rps").unwrap_or(0.0)),
            soak["connections"],
        )?;
        writeln!(md, "| Minute | req/s | p50 ms | p99 ms | errors | RSS MiB |\n|---:|---:|---:|---:|---:|---:|")?;
        for minute in soak["minutes"].as_array().into_iter().flatten() {
            writeln!(
                md,
                "| {} | {} | {} | {} | {:.0} | {:.1} |",
                minute["minute"],
                fmt_rate(num(minute, "rps").unwrap_or(0.0)),
                fmt_ms(num(minute, "p50_ms").unwrap_or(0.0)),
                fmt_ms(num(minute, "p99_ms").unwrap_or(0.0)),
                num(minute, "errors").unwrap_or(0.0),
                num(minute, "rss_kib").unwrap_or(0.0) / 1024.0,
            )?;
        }
        writeln!(
            md,
            "\nRule: {} (warm-up: {} minutes).\n",
            soak["rss_rule"].as_str().unwrap_or(""),
            soak["warmup_minutes"]
        )?;
        checks.push(Check::new(
            format!("soak: RSS flat after the warm-up, {name}"),
            "last 10 min max ≤ first post-warm-up minute × 1.1 + 2 MiB".into(),
            if verdict.is_null() {
                "too short for a verdict".into()
            } else {
                format!(
                    "{:.1} MiB max vs {:.1} MiB limit (baseline {:.1} MiB)",
                    num(verdict, "window_max_kib").unwrap_or(0.0) / 1024.0,
                    num(verdict, "limit_kib").unwrap_or(0.0) / 1024.0,
                    num(verdict, "baseline_kib").unwrap_or(0.0) / 1024.0
                )
            },
            verdict.get("is_flat").and_then(Value::as_bool),
        ));
        checks.push(Check::new(
            format!("soak: zero errors, {name}"),
            "0".into(),
            format!("{errors:.0}"),
            Some(errors == 0.0),
        ));
        out.insert(format!("soak_{key}"), soak);
    }
    if !any_soak {
        writeln!(md, "Not run (`BENCH_SOAK_MINUTES=30 bash bench/run`).\n")?;
    }

    // --- Two replicas -------------------------------------------------------------------
    writeln!(md, "## Two replicas on one PostgreSQL\n")?;
    let replica_dir = dir.join("postgres").join("replicas");
    if replica_dir.is_dir() {
        writeln!(
            md,
            "Two `tessera serve` processes on one database, the load generator's connections round-robin \
             over both; the total against the single process of the same run (same cores: two processes \
             share them).\n"
        )?;
        writeln!(md, "| Scenario | one process req/s | two replicas req/s | two ÷ one | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|")?;
        let mut replicas = Map::new();
        for (stem, title) in REPLICA_SCENARIOS {
            let one = legs.get("postgres").and_then(|l| l.get(*stem)).and_then(|v| num(v, "rps"));
            let two = read_json(&replica_dir.join(format!("{stem}.json")));
            let two_rps = two.as_ref().and_then(|t| num(t, "rps"));
            let ratio = ratio_against(two_rps, one, 0.0).map(|(r, _)| r);
            writeln!(
                md,
                "| {title} | {} | {} | {} | {} | {} |",
                one.map(fmt_rate).unwrap_or_else(|| "—".into()),
                two_rps.map(fmt_rate).unwrap_or_else(|| "—".into()),
                ratio.map(|r| format!("{r:.2}")).unwrap_or_else(|| "—".into()),
                two.as_ref().and_then(|t| num(t, "p99_ms")).map(fmt_ms).unwrap_or_else(|| "—".into()),
                two.as_ref().and_then(|t| num(t, "errors")).map(|e| format!("{e:.0}")).unwrap_or_else(|| "—".into()),
            )?;
            replicas.insert((*stem).into(), json!({ "two": two, "ratio": ratio }));
        }
        writeln!(md)?;
        out.insert("replicas".into(), Value::Object(replicas));
    } else {
        writeln!(md, "Not run (`BENCH_REPLICAS=1 bash bench/run`, PostgreSQL leg).\n")?;
    }
    Ok((Value::Object(out), md))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_at_the_target_is_met_and_below_it_missed() {
        assert_eq!(ratio_against(Some(900.0), Some(1000.0), 0.9), Some((0.9, true)));
        assert_eq!(ratio_against(Some(899.0), Some(1000.0), 0.9).map(|(_, met)| met), Some(false));
        assert_eq!(ratio_against(Some(1200.0), Some(1000.0), 0.9).map(|(_, met)| met), Some(true));
    }

    #[test]
    fn a_ratio_without_both_numbers_is_not_measured() {
        assert_eq!(ratio_against(None, Some(1000.0), 0.9), None);
        assert_eq!(ratio_against(Some(1000.0), None, 0.9), None);
        assert_eq!(ratio_against(Some(1000.0), Some(0.0), 0.9), None);
    }

    #[test]
    fn the_ratio_check_marks_met_and_missed() {
        let met = ratio_check("x".into(), Some(80.0), 100.0, 0.8, "raw");
        assert_eq!(met.met, Some(true));
        assert_eq!(met.verdict(), "**met**");
        let missed = ratio_check("x".into(), Some(79.0), 100.0, 0.8, "raw");
        assert_eq!(missed.verdict(), "**missed**");
        assert_eq!(ratio_check("x".into(), None, 100.0, 0.8, "raw").verdict(), "not measured");
    }

    #[test]
    fn excess_logins_must_be_refused_without_a_queue_or_errors() {
        let hash = Some(50.0);
        let bounded = json!({ "refused": 120, "refused_p99_ms": 80.0, "p99_ms": 190.0, "errors": 0 });
        assert_eq!(excess_refused(&bounded, hash), Some(true));
        // Checks waited in a queue: sixteen hash times.
        let queued = json!({ "refused": 120, "refused_p99_ms": 80.0, "p99_ms": 800.0, "errors": 0 });
        assert_eq!(excess_refused(&queued, hash), Some(false));
        // Refusals as slow as checks: they waited for something too.
        let slow_refusals = json!({ "refused": 120, "refused_p99_ms": 200.0, "p99_ms": 190.0, "errors": 0 });
        assert_eq!(excess_refused(&slow_refusals, hash), Some(false));
        let failing = json!({ "refused": 120, "refused_p99_ms": 80.0, "p99_ms": 190.0, "errors": 2 });
        assert_eq!(excess_refused(&failing, hash), Some(false));
        let under_the_bound = json!({ "refused": 0, "refused_p99_ms": 0.0, "p99_ms": 190.0, "errors": 0 });
        assert_eq!(excess_refused(&under_the_bound, hash), None);
        assert_eq!(excess_refused(&bounded, None), None);
    }
}
