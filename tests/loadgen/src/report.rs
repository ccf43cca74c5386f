//! Output: an aligned table for people (stdout) and one JSON line per run (stdout, and
//! appended to `--json-out` when given). JSON lines are the only stdout lines starting with `{`.

use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct Reporter {
    pub json_out: Option<PathBuf>,
}

impl Reporter {
    pub fn emit<T: Serialize>(&self, record: &T) -> anyhow::Result<()> {
        let line = serde_json::to_string(record)?;
        println!("{line}");
        if let Some(path) = &self.json_out {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Renders rows under headers with right-aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let fmt_row = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = fmt_row(headers.to_vec());
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    for row in rows {
        out.push('\n');
        out.push_str(&fmt_row(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.prec$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["ef", "recall"],
            &[vec!["16".into(), "0.9".into()], vec!["128".into(), "0.99".into()]],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
    }

    #[test]
    fn emit_appends_json_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Reporter {
            json_out: Some(dir.path().join("out.jsonl")),
        };
        r.emit(&serde_json::json!({"a": 1})).expect("emit");
        r.emit(&serde_json::json!({"a": 2})).expect("emit");
        let s = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("read");
        assert_eq!(s, "{\"a\":1}\n{\"a\":2}\n");
    }
}
