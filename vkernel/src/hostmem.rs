//! How much memory the host can back, and the pool capped to it. The pool
//! is reserved lazily, so a `--pool` far beyond the host's memory costs
//! nothing at start; but a guest that touches it drives the host into
//! swap or the OOM killer (`--pool 65536` took a host to 14 GB RSS in
//! 60 s). So `--pool` is capped, with a warning, to what the host can back
//! beside `--memory`: the least of MemAvailable plus free swap, the
//! address-space limit (RLIMIT_AS) and the cgroup's memory.max.

/// Host memory vkernel needs beside guest memory (its own heap, the
/// vmspaces' bookkeeping, KVM's structures), kept out of the pool.
pub const OVERHEAD_MIB: u64 = 64;

/// The smallest pool (the CLI's lower bound).
const MIN_POOL_MIB: u64 = 8;

/// What the host can back, in MiB, and which limit says so; `None` when no
/// limit could be read.
pub fn backable_mib() -> Option<(u64, &'static str)> {
    backable_mib_for(u64::MAX)
}

/// [`backable_mib`] for a run that needs `wanted_mib` (guest memory, the
/// pool and vkernel's own): /proc/meminfo is read only when sysinfo(2)
/// cannot already show room for it. Reading /proc/meminfo costs about
/// 40 us (the kernel sums its counters for it), sysinfo a fraction of a
/// microsecond. MemAvailable is never below MemFree less the kernel's
/// reserves (its watermarks and lowmem reserves, a few percent of RAM),
/// so MemFree + SwapFree less an eighth of RAM is a lower bound of
/// MemAvailable + SwapFree: when it covers the run, the cap cannot bind.
pub fn backable_mib_for(wanted_mib: u64) -> Option<(u64, &'static str)> {
    let mut limits = Vec::new();
    // SAFETY: a plain C struct of integers, for which zero is valid.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: sysinfo writes only into `si`.
    let filled = unsafe { libc::sysinfo(&mut si) } == 0;
    let lower = if filled {
        let unit = (si.mem_unit.max(1)) as u64;
        let free = (si.freeram as u64 + si.freeswap as u64).saturating_mul(unit);
        let reserve = (si.totalram as u64).saturating_mul(unit) / 8;
        Some(free.saturating_sub(reserve) >> 20)
    } else {
        None
    };
    if let Some(mib) = lower.filter(|&mib| mib >= wanted_mib) {
        limits.push((mib, "MemFree + SwapFree less reserves"));
    } else if let Ok(info) = std::fs::read_to_string("/proc/meminfo") {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        if let Some(avail) = field("MemAvailable:") {
            let swap = field("SwapFree:").unwrap_or(0);
            limits.push(((avail + swap) >> 10, "MemAvailable + SwapFree"));
        }
    }
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into `rl`.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) } == 0
        && rl.rlim_cur != libc::RLIM_INFINITY
    {
        limits.push((rl.rlim_cur >> 20, "RLIMIT_AS"));
    }
    if let Some(left) = cgroup_left() {
        limits.push((left >> 20, "the cgroup's memory.max"));
    }
    limits.into_iter().min_by_key(|&(mib, _)| mib)
}

/// Bytes the cgroup (v2) may still charge: memory.max - memory.current.
fn cgroup_left() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?; // "max": no limit
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// The pool to use for `pool_mib` beside `memory_mib` of guest RAM when
/// the host can back `backable` (MiB, and the limit's name): the request,
/// or less with the warning to print.
pub fn cap_pool(
    pool_mib: u64,
    memory_mib: u64,
    backable: Option<(u64, &str)>,
) -> (u64, Option<String>) {
    let Some((mib, limit)) = backable else {
        return (pool_mib, None);
    };
    let room = mib.saturating_sub(memory_mib + OVERHEAD_MIB);
    if pool_mib <= room {
        return (pool_mib, None);
    }
    let capped = room.max(MIN_POOL_MIB);
    (
        capped,
        Some(format!(
            "--pool {pool_mib} MiB is more than this host can back ({limit}: {mib} MiB, beside --memory {memory_mib} MiB and {OVERHEAD_MIB} MiB for vkernel); using --pool {capped} MiB"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_the_host_can_back_is_kept() {
        assert_eq!(cap_pool(1024, 64, Some((4096, "x"))), (1024, None));
        assert_eq!(cap_pool(1024, 64, None), (1024, None));
        assert_eq!(cap_pool(1024, 64, Some((1024 + 128, "x"))), (1024, None));
    }

    #[test]
    fn a_larger_pool_is_capped_with_a_warning() {
        let (pool, warning) = cap_pool(65536, 64, Some((8192, "MemAvailable + SwapFree")));
        assert_eq!(pool, 8192 - 64 - OVERHEAD_MIB);
        let w = warning.unwrap();
        assert!(w.starts_with("--pool 65536 MiB is more than this host can back (MemAvailable + SwapFree: 8192 MiB"), "{w}");
        assert!(w.ends_with("using --pool 8064 MiB"), "{w}");
        // Never below the smallest pool.
        assert_eq!(cap_pool(1024, 64, Some((100, "RLIMIT_AS"))).0, MIN_POOL_MIB);
    }

    #[test]
    fn a_small_run_spares_meminfo_and_still_has_a_limit_that_covers_it() {
        // sysinfo's lower bound covers 1 MiB on any host that runs tests;
        // a run larger than the host falls back to /proc/meminfo.
        let (mib, _) = backable_mib_for(1).unwrap();
        assert!(mib >= 1, "{mib} MiB cannot back a 1 MiB run");
        let (_, limit) = backable_mib_for(u64::MAX).unwrap();
        assert_ne!(limit, "MemFree + SwapFree less reserves");
    }

    #[test]
    fn this_host_has_a_limit() {
        // /proc/meminfo is there on Linux.
        let (mib, _) = backable_mib().unwrap();
        assert!(mib > 0);
    }
}
