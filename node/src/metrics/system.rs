//! Readings of the process and its machine for `/metrics` and `/telemetry`: the allocator's
//! memory statistics, `/proc` counters (Qdrant's `process_*` family) and the running
//! environment (`app.system`).
//!
//! Memory: Qdrant reads jemalloc's statistics; this node uses the system allocator (glibc), so
//! the five values are the closest true readings we have: `allocated` and `active` are the
//! bytes glibc malloc has handed out and not freed (`mallinfo2`: in-use chunks plus mmapped
//! chunks; glibc has no page-granular "active" figure), `metadata` is 0 (glibc keeps its
//! bookkeeping inside the chunks, counted in `allocated`), `resident` is the process's resident
//! set (`VmRSS`, so it also counts code, stacks and RocksDB's own mappings) and `retained` the
//! free memory malloc keeps in its arenas instead of returning it to the OS (`fordblks`).

use std::path::Path;

/// Qdrant's `MemoryTelemetry` fields, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub active_bytes: u64,
    pub allocated_bytes: u64,
    pub metadata_bytes: u64,
    pub resident_bytes: u64,
    pub retained_bytes: u64,
}

/// The allocator's and the kernel's view of this process's memory (see the module docs).
pub fn memory() -> Memory {
    let resident = status_kib("VmRSS").map_or(0, |kib| kib * 1024);
    let (in_use, free) = malloc_stats();
    Memory {
        active_bytes: in_use,
        allocated_bytes: in_use,
        metadata_bytes: 0,
        resident_bytes: resident,
        retained_bytes: free,
    }
}

/// `(bytes in use, free bytes held)` of glibc malloc over all arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn malloc_stats() -> (u64, u64) {
    // SAFETY: mallinfo2 only reads the allocator's counters (taking each arena's lock) and
    // returns them by value; it has no preconditions.
    let info = unsafe { libc::mallinfo2() };
    ((info.uordblks + info.hblkhd) as u64, info.fordblks as u64)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn malloc_stats() -> (u64, u64) {
    (0, 0)
}

/// A `Name:   123 kB` line of `/proc/self/status`, in KiB (or the bare number, for `Threads`).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Qdrant's procfs metrics (`process_*`, `system_max_mmaps`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Process {
    pub threads: u64,
    pub open_mmaps: u64,
    pub max_mmaps: u64,
    pub open_fds: u64,
    /// The lower of the soft and hard limit on open files (the other when one is unlimited,
    /// 0 when both are).
    pub max_fds: u64,
    /// Page faults of this process, its reaped children and its living descendants.
    pub minor_page_faults: u64,
    pub major_page_faults: u64,
}

/// Reads `/proc`; `None` where it is not available.
pub fn process() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let faults = stat_faults(&stat)?;
    let (child_minor, child_major) = descendants_faults("self");
    Some(Process {
        threads: status_kib("Threads").unwrap_or(0),
        open_mmaps: std::fs::read("/proc/self/maps").map_or(0, |m| m.iter().filter(|b| **b == b'\n').count() as u64),
        max_mmaps: read_number("/proc/sys/vm/max_map_count").unwrap_or(0),
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        max_fds: std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| max_open_files(&l))
            .unwrap_or(0),
        minor_page_faults: faults.0 + faults.2 + child_minor,
        major_page_faults: faults.1 + faults.3 + child_major,
    })
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `(minflt, majflt, cminflt, cmajflt)` of a `/proc/<pid>/stat` line.
fn stat_faults(stat: &str) -> Option<(u64, u64, u64, u64)> {
    // The command name is in parentheses and may hold spaces: fields are counted after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // Field 3 (state) is f[0]; minflt is field 10, cminflt 11, majflt 12, cmajflt 13.
    Some((n(7)?, n(9)?, n(8)?, n(10)?))
}

/// Page faults (with their own reaped children's) of every living descendant of `pid`.
fn descendants_faults(pid: &str) -> (u64, u64) {
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = children(pid);
    let (mut minor, mut major) = (0, 0);
    while let Some(child) = stack.pop() {
        if !seen.insert(child.clone()) {
            continue;
        }
        if let Some((min, maj, cmin, cmaj)) = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .ok()
            .and_then(|s| stat_faults(&s))
        {
            minor += min + cmin;
            major += maj + cmaj;
        }
        stack.extend(children(&child));
    }
    (minor, major)
}

/// Child pids of every thread of `pid`.
fn children(pid: &str) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// The `Max open files` line of `/proc/<pid>/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line["Max open files".len()..].split_whitespace();
    let parse = |v: Option<&str>| -> Option<Option<u64>> {
        match v? {
            "unlimited" => Some(None),
            n => n.parse().ok().map(Some),
        }
    };
    let soft = parse(values.next())?;
    let hard = parse(values.next())?;
    Some(match (soft, hard) {
        (Some(s), Some(h)) => s.min(h),
        (None, Some(h)) => h,
        (Some(s), None) => s,
        (None, None) => 0,
    })
}

/// Qdrant's `RunningEnvironmentTelemetry` (without `cpu_cores_used`, which we do not sample).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    pub distribution: Option<String>,
    pub distribution_version: Option<String>,
    pub is_docker: bool,
    pub cores: Option<usize>,
    /// KiB: the cgroup memory limit, or the machine's RAM when lower or unlimited.
    pub ram_size: Option<u64>,
    /// KiB: size of the filesystem holding the storage directory.
    pub disk_size: Option<u64>,
    pub cpu_flags: String,
    pub cpu_endian: &'static str,
}

pub fn system(storage_path: &Path) -> System {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os_field = |key: &str| {
        os_release.lines().find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix('=')?;
            Some(v.trim_matches('"').to_string())
        })
    };
    System {
        distribution: os_field("ID").or_else(|| Some(std::env::consts::OS.to_string())),
        distribution_version: os_field("VERSION_ID"),
        is_docker: Path::new("/.dockerenv").exists(),
        cores: std::thread::available_parallelism().ok().map(|n| n.get()),
        ram_size: ram_kib(),
        disk_size: disk_kib(storage_path),
        cpu_flags: cpu_flags().join(","),
        cpu_endian: if cfg!(target_endian = "little") {
            "little"
        } else {
            "big"
        },
    }
}

fn ram_kib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = meminfo.lines().find_map(|l| {
        let v = l.strip_prefix("MemTotal:")?;
        v.split_whitespace().next()?.parse::<u64>().ok()
    })?;
    let limit = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| read_number(p))
    .map(|bytes| bytes / 1024);
    Some(limit.map_or(total, |l| l.min(total)))
}

#[cfg(unix)]
fn disk_kib(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = if path.exists() { path } else { Path::new(".") };
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated path and `buf` is valid for writing one statvfs;
    // it is read only when the call reports success.
    let stats = unsafe {
        if libc::statvfs(c_path.as_ptr(), buf.as_mut_ptr()) != 0 {
            return None;
        }
        buf.assume_init()
    };
    Some(stats.f_blocks as u64 * stats.f_frsize as u64 / 1024)
}

#[cfg(not(unix))]
fn disk_kib(_path: &Path) -> Option<u64> {
    None
}

/// The CPU features Qdrant lists, in its order.
fn cpu_flags() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut flags = Vec::new();
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let detected = [
            ("sse", std::arch::is_x86_feature_detected!("sse")),
            ("sse2", std::arch::is_x86_feature_detected!("sse2")),
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512vl", std::arch::is_x86_feature_detected!("avx512vl")),
            (
                "avx512vpopcntdq",
                std::arch::is_x86_feature_detected!("avx512vpopcntdq"),
            ),
        ];
        flags.extend(detected.iter().filter(|(_, on)| *on).map(|(name, _)| *name));
    }
    #[cfg(target_arch = "aarch64")]
    {
        let detected = [
            ("neon", std::arch::is_aarch64_feature_detected!("neon")),
            ("fp16", std::arch::is_aarch64_feature_detected!("fp16")),
        ];
        flags.extend(detected.iter().filter(|(_, on)| *on).map(|(name, _)| *name));
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_lines() {
        let stat = "1234 (qdrant (main)) S 1 1234 1234 0 -1 4194560 17 3 2 1 5 6 0 0 20 0 40 0";
        assert_eq!(stat_faults(stat), Some((17, 2, 3, 1)));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        let unlimited = "Max open files            unlimited            4096                 files\n";
        assert_eq!(max_open_files(unlimited), Some(4096));
    }

    #[test]
    fn reads_this_process() {
        let p = process().expect("/proc is readable");
        assert!(p.threads >= 1 && p.open_fds >= 1 && p.open_mmaps >= 1, "{p:?}");
        let m = memory();
        assert!(m.resident_bytes > 0 && m.allocated_bytes > 0, "{m:?}");
        let s = system(Path::new("."));
        assert!(s.cores.unwrap_or(0) >= 1 && s.ram_size.unwrap_or(0) > 0, "{s:?}");
    }
}
