//! CPU time and memory of a process from /proc, and of this process from the kernel clocks.

use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}: unexpected format")]
    Format(PathBuf),
}

/// One sample of a process: user+system CPU seconds and resident memory (`VmRSS`, its peak
/// `VmHWM`, and the anonymous and file-backed parts of `VmRSS`: `RssAnon`, `RssFile`; a file
/// the server maps, e.g. on-disk vectors, counts in `RssFile` while its pages are resident).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct ProcSample {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
    pub rss_anon_bytes: u64,
    pub rss_file_bytes: u64,
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn read(path: PathBuf) -> Result<(String, PathBuf), ProcError> {
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok((s, path)),
        Err(source) => Err(ProcError::Io { path, source }),
    }
}

/// utime + stime (fields 14 and 15 of /proc/<pid>/stat, counted after the `comm` field).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 -> index 11, stime index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Name:   N kB` line of /proc/<pid>/status, in bytes.
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// Samples `/proc/<pid>` ("self" for this process).
pub fn sample(pid: &str) -> Result<ProcSample, ProcError> {
    let (stat, stat_path) = read(PathBuf::from(format!("/proc/{pid}/stat")))?;
    let ticks = parse_stat_cpu_ticks(&stat).ok_or(ProcError::Format(stat_path))?;
    let (status, status_path) = read(PathBuf::from(format!("/proc/{pid}/status")))?;
    let rss_bytes = parse_status_kb(&status, "VmRSS").ok_or(ProcError::Format(status_path))?;
    let hwm_bytes = parse_status_kb(&status, "VmHWM").unwrap_or(rss_bytes);
    Ok(ProcSample {
        cpu_s: ticks as f64 / clock_ticks_per_second(),
        rss_bytes,
        hwm_bytes,
        rss_anon_bytes: parse_status_kb(&status, "RssAnon").unwrap_or(0),
        rss_file_bytes: parse_status_kb(&status, "RssFile").unwrap_or(0),
    })
}

/// Sum over several processes (e.g. the peers of a local cluster).
pub fn sample_all(pids: &[u32]) -> Result<Option<ProcSample>, ProcError> {
    if pids.is_empty() {
        return Ok(None);
    }
    let mut total = ProcSample::default();
    for pid in pids {
        let s = sample(&pid.to_string())?;
        total.cpu_s += s.cpu_s;
        total.rss_bytes += s.rss_bytes;
        total.hwm_bytes += s.hwm_bytes;
        total.rss_anon_bytes += s.rss_anon_bytes;
        total.rss_file_bytes += s.rss_file_bytes;
    }
    Ok(Some(total))
}

fn clock_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids used are always supported on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU seconds consumed by this whole process (all threads), nanosecond resolution.
pub fn process_cpu_seconds() -> f64 {
    clock_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU seconds consumed by the calling thread.
pub fn thread_cpu_seconds() -> f64 {
    clock_seconds(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Server usage over an interval: CPU delta and the memory at its end (`rss_bytes` = VmRSS
/// sampled after the interval, `hwm_bytes` = VmHWM, the peak since the process started).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ServerUsage {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
    pub rss_anon_bytes: u64,
    pub rss_file_bytes: u64,
}

pub fn usage_between(before: Option<ProcSample>, after: Option<ProcSample>) -> Option<ServerUsage> {
    match (before, after) {
        (Some(b), Some(a)) => Some(ServerUsage {
            cpu_s: a.cpu_s - b.cpu_s,
            rss_bytes: a.rss_bytes,
            hwm_bytes: a.hwm_bytes,
            rss_anon_bytes: a.rss_anon_bytes,
            rss_file_bytes: a.rss_file_bytes,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_comm() {
        let stat = "1234 (tokio worker) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100 2000 300";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_status_fields() {
        let status = "Name:\tqdrant\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t  1000 kB\nRssFile:\t    24 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(parse_status_kb(status, "RssAnon"), Some(1000 * 1024));
        assert_eq!(parse_status_kb(status, "RssFile"), Some(24 * 1024));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn samples_self() {
        let s = sample("self").expect("sample self");
        assert!(s.rss_bytes > 0);
        assert!(s.hwm_bytes >= s.rss_bytes);
        assert!(s.rss_anon_bytes + s.rss_file_bytes <= s.rss_bytes);
        let t0 = process_cpu_seconds();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_seconds() > t0);
        assert!(thread_cpu_seconds() > 0.0);
    }
}
