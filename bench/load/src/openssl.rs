//! The physical limit: `openssl speed -seconds S [-multi N] rsa2048`.
//!
//! OpenSSL 3.0 prints a table whose header names the columns (`sign verify sign/s
//! verify/s`; 3.2 and later add encrypt/decrypt columns) and whose data row starts with
//! `rsa 2048 bits`. The rate columns are found by their header names, so added columns
//! do not shift them. With `-multi`, each child also reports `+F2:<i>:<bits>:<sign>:<verify>`
//! (operations per second in OpenSSL 3); their sum cross-checks the table.

use anyhow::{bail, Context};
use serde::Serialize;
use std::process::Command;

#[derive(Debug, Serialize)]
pub struct Speed {
    pub command: String,
    pub version: String,
    pub processes: usize,
    pub seconds: u32,
    pub sign_per_s: f64,
    pub verify_per_s: f64,
    /// Per child process (`-multi` only), from the `+F2` lines.
    pub children_sign_per_s: Vec<f64>,
    pub children_verify_per_s: Vec<f64>,
}

pub fn run(seconds: u32, multi: Option<usize>) -> anyhow::Result<Speed> {
    let mut args = vec!["speed".to_owned(), "-seconds".to_owned(), seconds.to_string()];
    if let Some(n) = multi {
        args.extend(["-multi".to_owned(), n.to_string()]);
    }
    args.push("rsa2048".to_owned());
    let output = Command::new("openssl").args(&args).output().context("running openssl (is it installed?)")?;
    if !output.status.success() {
        bail!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (sign, verify) = parse_table(&stdout).with_context(|| format!("unexpected openssl output:\n{stdout}"))?;
    let (children_sign, children_verify) = parse_children(&stdout);
    let version = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Ok(Speed {
        command: format!("openssl {}", args.join(" ")),
        version,
        processes: multi.unwrap_or(1),
        seconds,
        sign_per_s: sign,
        verify_per_s: verify,
        children_sign_per_s: children_sign,
        children_verify_per_s: children_verify,
    })
}

/// `(sign/s, verify/s)` from the summary table.
fn parse_table(stdout: &str) -> Option<(f64, f64)> {
    let lines: Vec<&str> = stdout.lines().collect();
    let header_at = lines.iter().position(|l| l.split_whitespace().any(|w| w == "sign/s"))?;
    let header: Vec<&str> = lines[header_at].split_whitespace().collect();
    let row = lines[header_at + 1..].iter().find(|l| l.trim_start().starts_with("rsa 2048 bits"))?;
    // The row's values follow "rsa 2048 bits", one per header column.
    let values: Vec<&str> = row.split_whitespace().skip(3).collect();
    if values.len() != header.len() {
        return None;
    }
    let column = |name: &str| -> Option<f64> {
        let i = header.iter().position(|h| *h == name)?;
        values[i].trim_end_matches('s').parse().ok()
    };
    Some((column("sign/s")?, column("verify/s")?))
}

fn parse_children(stdout: &str) -> (Vec<f64>, Vec<f64>) {
    let mut sign = Vec::new();
    let mut verify = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.split("+F2:").nth(1) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().next().unwrap_or("").split(':').collect();
        if let (Some(s), Some(v)) = (fields.get(2), fields.get(3)) {
            if let (Ok(s), Ok(v)) = (s.parse(), v.parse()) {
                sign.push(s);
                verify.push(v);
            }
        }
    }
    (sign, verify)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENSSL_30_MULTI: &str = "Forked child 0\nForked child 1\n\
        Got: +F2:2:2048:2191.000000:42050.000000 from 0\n\
        Got: +F2:2:2048:2273.000000:31333.663366 from 1\n\
        version: 3.0.19\nbuilt on: Fri Apr  3 12:29:32 2026 UTC\noptions: bn(64,64)\n\
        CPUINFO: OPENSSL_ia32cap=0xfffa3203078bffff:0x405fc6f1bf07ab\n\
        \x20                 sign    verify    sign/s verify/s\n\
        rsa 2048 bits 0.000224s 0.000014s   4464.0  73383.7\n";

    const OPENSSL_33: &str = "version: 3.3.1\n\
        \x20                  sign    verify    encrypt   decrypt   sign/s verify/s  encr./s  decr./s\n\
        rsa 2048 bits 0.000500s 0.000015s 0.000016s 0.000498s   2000.0  66666.7  62500.0   2008.0\n";

    #[test]
    fn reads_the_openssl_30_table_and_children() {
        assert_eq!(parse_table(OPENSSL_30_MULTI), Some((4464.0, 73383.7)));
        let (sign, verify) = parse_children(OPENSSL_30_MULTI);
        assert_eq!(sign, vec![2191.0, 2273.0]);
        assert_eq!(verify, vec![42050.0, 31333.663366]);
    }

    #[test]
    fn finds_the_rate_columns_by_name_when_more_columns_exist() {
        assert_eq!(parse_table(OPENSSL_33), Some((2000.0, 66666.7)));
    }
}
