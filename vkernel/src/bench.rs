//! `vkernel bench`: every path as a ratio to the floor, a bare KVM exit
//! round trip measured in the same run. The machines this runs on are
//! noisy; ratios hold where absolute times do not.
//!
//! The floor is a second, minimal VM made here: its vCPU loops on
//! `out dx, eax` in ring 3 through its TSS I/O bitmap, and the host
//! re-enters it without looking at the exit — what KVM itself costs for the
//! kind of exit every vkernel hypercall takes. The other figures come from
//! the guest kernel's benchmark mode (`--append bench=all`), run as a child
//! process, and from timing whole `vkernel run` processes (boot).
//!
//! Every process-level benchmark (the default image's `/bin/systest`:
//! fork, first touch, threads, files and pipes, time calls, and its start
//! to exit against `boot_to_exit`) also runs natively on the host in the
//! same run, so each of those figures has its ratio to native as well
//! (`native_ns` and `ratio_to_native` in the JSON). The peers (gVisor,
//! UML) are `bench/peers.sh`'s, which records `--floor-only` with them.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use vkernel_abi::HC_PORT_BASE;
use vm_memory::{Bytes, GuestAddress};

use crate::cli::BenchArgs;
use crate::error::{kvm_err, Error};
use crate::vm::{MemoryConfig, Vm};

/// One figure: per-operation nanoseconds over repetitions.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// Median of the repetitions.
    pub median_ns: f64,
    /// Fastest repetition.
    pub min_ns: f64,
    /// Slowest repetition.
    pub max_ns: f64,
}

impl Figure {
    fn from_samples(mut v: Vec<f64>) -> Option<Figure> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Figure {
            median_ns: v[v.len() / 2],
            min_ns: v[0],
            max_ns: v[v.len() - 1],
        })
    }
}

/// What each figure measures, in table order.
const FIGURES: &[(&str, &str)] = &[
    ("floor", "raw KVM exit round trip (ring-3 out, bare VM)"),
    (
        "syscall_exit",
        "raw ring-3 syscall -> LSTAR stub out -> resumed at RCX (bare VM): a process's trap before any vkernel work",
    ),
    (
        "syscall_design_floor",
        "floor + syscall_exit: a system call's two exits with no vkernel work (what `syscall` cannot go below)",
    ),
    (
        "null_hypercall",
        "no-op hypercall through the vkernel dispatch",
    ),
    ("vmspace_create_destroy", "vmspace_create + vmspace_destroy"),
    (
        "vmspace_mmap_munmap",
        "vmspace_mmap + vmspace_munmap (1 page)",
    ),
    ("vmspace_pread", "vmspace_pread (8 bytes)"),
    ("vmspace_pwrite", "vmspace_pwrite (8 bytes)"),
    ("vmspace_mcontrol", "vmspace_mcontrol (MADV_NORMAL)"),
    ("vmspace_mprotect", "vmspace_mprotect (1 page)"),
    (
        "vmspace_clone_destroy",
        "vmspace_clone + vmspace_destroy (small process)",
    ),
    (
        "syscall",
        "process syscall -> guest kernel -> ctl RUN -> process",
    ),
    (
        "fault_to_kernel",
        "page fault delivered to the guest kernel and back",
    ),
    (
        "context_switch",
        "switch between two processes (the kernel swaps FPU state)",
    ),
    (
        "fork_exit_wait",
        "fork + _exit + wait4 of a small static process (/bin/systest), pmap=host: the host copies",
    ),
    (
        "fork_exit_wait_guest",
        "the same, pmap=guest: the guest kernel shares pages copy-on-write",
    ),
    (
        "thread_create_join",
        "clone of a thread + its exit + the joiner's futex wake (CLONE_CHILD_CLEARTID), pmap=host",
    ),
    (
        "futex_pingpong",
        "futex wake -> wait round trip between two threads of one process, pmap=host",
    ),
    (
        "thread_switch",
        "switch between two threads of one process (both sched_yield), pmap=host",
    ),
    (
        "process_switch",
        "the same between two processes (another vmspace each time), pmap=host",
    ),
    (
        "first_touch",
        "a process's first write to fresh anonymous memory, per page, pmap=host",
    ),
    (
        "first_touch_guest",
        "the same, pmap=guest: the guest kernel's fault handler maps each page",
    ),
    (
        "page_fault",
        "first touch of a fresh 64 MiB mapping, per 4 KiB page",
    ),
    (
        "vpt_fault",
        "first touch through guest page tables (MAP_VPAGETABLE), per 4 KiB page: one host-resolved fault each",
    ),
    (
        "vpt_fault_around",
        "the same with the guest's entries made accessed: one fault per 64-page window, per page",
    ),
    (
        "vpt_touch_shadowed",
        "touch of MAP_VPAGETABLE pages already in the shadow after KVM dropped its cache, per page",
    ),
    (
        "pipe_64k",
        "pipe throughput: 64 KiB written by one process and read by another, pmap=host",
    ),
    ("pipe_64k_guest", "the same, pmap=guest"),
    (
        "pipe_pingpong",
        "one byte there and back through two pipes between two processes, pmap=host",
    ),
    ("pipe_pingpong_guest", "the same, pmap=guest"),
    (
        "tmpfs_write_1m",
        "sequential write of a tmpfs file in 1 MiB calls, per MiB, pmap=host",
    ),
    ("tmpfs_write_1m_guest", "the same, pmap=guest"),
    (
        "tmpfs_read_1m",
        "sequential read of a tmpfs file in 1 MiB calls, per MiB, pmap=host",
    ),
    ("tmpfs_read_1m_guest", "the same, pmap=guest"),
    (
        "open_fstat_close",
        "open + fstat + close of an existing tmpfs file, pmap=host",
    ),
    ("open_fstat_close_guest", "the same, pmap=guest"),
    (
        "clock_gettime_vdso",
        "clock_gettime(CLOCK_MONOTONIC) through the vDSO (glibc's path), pmap=host",
    ),
    ("clock_gettime_vdso_guest", "the same, pmap=guest"),
    (
        "gettimeofday_vdso",
        "gettimeofday through the vDSO, pmap=host",
    ),
    ("gettimeofday_vdso_guest", "the same, pmap=guest"),
    (
        "clock_gettime_syscall",
        "clock_gettime(CLOCK_MONOTONIC) as a system call, pmap=host",
    ),
    ("clock_gettime_syscall_guest", "the same, pmap=guest"),
    (
        "kernel_entry",
        "vkernel start -> guest kernel's first instruction",
    ),
    (
        "init_first_instruction",
        "vkernel start -> /init's first instruction",
    ),
    (
        "boot_to_exit",
        "vkernel start to exit, /init exits at once (wall, whole process)",
    ),
];

/// Figures the guest reports as `bench_sample NAME ns` lines (one per
/// repetition, timed inside the guest); its `bench NAME` line for them
/// times the set-up too and is ignored.
const SAMPLED: &[&str] = &[
    "page_fault",
    "vpt_fault",
    "vpt_fault_around",
    "vpt_touch_shadowed",
];

/// What a bare VM's vCPU loops on (in ring 3, as every vkernel context).
#[derive(Clone, Copy)]
enum BareLoop {
    /// `out dx, eax` through the TSS I/O bitmap: a hypercall's exit, the
    /// floor.
    Out,
    /// `syscall`, which lands on the trap area's stub (LSTAR) and its
    /// `out SYSCALL_PORT`; the host resumes at RCX through the synced
    /// registers. A process's system call pays this before the vkernel
    /// does anything: on PVM `syscall` is an event of its own before the
    /// stub's exit (KVM-NOTES: 27 µs against the floor's 20.5).
    Syscall,
}

/// Measures the floor: `reps` repetitions of `iters` bare exits.
pub fn floor(reps: usize, iters: u64) -> Result<Vec<f64>, Error> {
    bare_exits(BareLoop::Out, reps, iters)
}

/// `reps` repetitions of `iters` round trips of `kind` in a VM made here,
/// with nothing of the vkernel's around the exit.
fn bare_exits(kind: BareLoop, reps: usize, iters: u64) -> Result<Vec<f64>, Error> {
    use kvm_ioctls::{SyncReg, VcpuExit};
    use vkernel_abi::{selector, SYSCALL_PORT};
    let cfg = MemoryConfig {
        ram_bytes: 16 << 20,
        pool_bytes: 8 << 20,
        kvm_path: "/dev/kvm".into(),
        teardown_helper: false,
    };
    let mut vm = Vm::new(&cfg)?;
    let (code, port): (Vec<u8>, u16) = match kind {
        // mov dx, HC_PORT_BASE; 1: out dx, eax; jmp 1b
        BareLoop::Out => {
            let p = HC_PORT_BASE.to_le_bytes();
            (vec![0x66, 0xba, p[0], p[1], 0xef, 0xeb, 0xfd], HC_PORT_BASE)
        }
        // 1: syscall; jmp 1b
        BareLoop::Syscall => (vec![0x0f, 0x05, 0xeb, 0xfc], SYSCALL_PORT),
    };
    let entry = 0x20_0000;
    vm.guest
        .mem
        .write_slice(&code, GuestAddress(entry))
        .map_err(|e| Error::Memory {
            what: "writing the bare VM's code",
            source: Box::new(e),
        })?;
    vm.enter_kernel(entry)?;
    let vcpu = &mut vm.vcpu.fd;
    if let BareLoop::Syscall = kind {
        // The process's TSS: its I/O bitmap opens the syscall stub's port.
        let mut sregs = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        crate::vm::set_tr(&mut sregs, selector::TSS_PROCESS);
        crate::vm::set_tr_type(&mut sregs);
        vcpu.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
    }
    // The floor syncs no registers: the bare cost of an exit. (Measured
    // here: the register sync the vkernel uses adds less than the
    // run-to-run noise.) The syscall loop syncs the general registers, as
    // the vkernel does, to resume at RCX.
    vcpu.clear_sync_valid_reg(SyncReg::SystemRegister);
    match kind {
        BareLoop::Out => vcpu.clear_sync_valid_reg(SyncReg::Register),
        BareLoop::Syscall => vcpu.set_sync_valid_reg(SyncReg::Register),
    }
    // Every exit must be that `out`: anything else (a #GP through the
    // trap area's stubs, a shutdown...) ends the benchmark with a message
    // instead of running the vCPU on.
    let mut run = |n: u64| -> Result<(), Error> {
        for _ in 0..n {
            match vcpu.run().map_err(kvm_err("KVM_RUN"))? {
                VcpuExit::IoOut(p, _) if p == port => {}
                other => {
                    return Err(Error::Setup(format!(
                        "bench: KVM_RUN returned {other:?}, not the `out` to port \
                         {port:#x} the bare VM loops on"
                    )))
                }
            }
            if let BareLoop::Syscall = kind {
                let regs = &mut vcpu.sync_regs_mut().regs;
                regs.rip = regs.rcx;
                vcpu.set_sync_dirty_reg(SyncReg::Register);
            }
        }
        Ok(())
    };
    run(100)?; // the first entries of a new VM are slow
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        run(iters)?;
        samples.push(t0.elapsed().as_nanos() as f64 / iters as f64);
    }
    Ok(samples)
}

/// Runs a guest that prints `bench` lines (the test kernel's benchmark
/// mode, or a process benchmark of the real kernel) and collects them.
fn guest_figures(test_kernel: bool, append: &str) -> Result<BTreeMap<String, Figure>, Error> {
    guest_figures_with(test_kernel, append, 64)
}

/// [`guest_figures`] with `memory_mib` of guest RAM (the file benchmark's
/// 64 MiB file needs a tmpfs, half of RAM, larger than that).
fn guest_figures_with(
    test_kernel: bool,
    append: &str,
    memory_mib: u64,
) -> Result<BTreeMap<String, Figure>, Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        what: "finding vkernel",
        source,
    })?;
    let out = Command::new(exe)
        .args(["run", "--pool", "512", "--memory", &memory_mib.to_string()])
        .args(test_kernel.then_some("--test-kernel"))
        .args(["--append", append])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| Error::Io {
            what: "running the benchmark guest",
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "the benchmark guest failed: {}",
            out.status
        )));
    }
    Ok(parse_bench_lines(&String::from_utf8_lossy(&out.stdout)))
}

/// The default image's `/bin/systest`, written to a scratch directory of
/// the host and run there natively (it is an ordinary static Linux
/// program): every process-level benchmark's native figure, for the
/// ratio to native in the same run. The directory goes when this does.
struct NativeSystest {
    dir: std::path::PathBuf,
    exe: std::path::PathBuf,
}

impl NativeSystest {
    fn new() -> Result<NativeSystest, Error> {
        let systest = vkernel_abi::cpio::Archive::find(crate::images::DEFAULT_IMAGE, "bin/systest")
            .ok_or_else(|| Error::Setup("the default image has no /bin/systest".into()))?;
        let dir = std::env::temp_dir().join(format!("vkernel-bench-{}", std::process::id()));
        let exe = dir.join("systest");
        let native = NativeSystest { dir, exe };
        std::fs::create_dir_all(&native.dir)
            .and_then(|()| std::fs::write(&native.exe, systest.data))
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&native.exe, std::fs::Permissions::from_mode(0o755))
            })
            .map_err(|source| Error::Io {
                what: "writing /bin/systest to a host directory for the native benchmarks",
                source,
            })?;
        Ok(native)
    }

    /// Runs `systest ARGS` and collects its `bench` lines.
    fn figures(&self, args: &[&str]) -> Result<BTreeMap<String, Figure>, Error> {
        let out = Command::new(&self.exe)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|source| Error::Io {
                what: "running /bin/systest natively",
                source,
            })?;
        if !out.status.success() {
            return Err(Error::Setup(format!(
                "native systest {} failed: {}",
                args.join(" "),
                out.status
            )));
        }
        Ok(parse_bench_lines(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Wall time from spawning `systest exit 0` to its exit, `runs`
    /// times: the native counterpart of `boot_to_exit`.
    fn start_to_exit(&self, runs: usize) -> Result<Figure, Error> {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t0 = Instant::now();
            let status = Command::new(&self.exe)
                .args(["exit", "0"])
                .stdout(Stdio::null())
                .status()
                .map_err(|source| Error::Io {
                    what: "running /bin/systest natively",
                    source,
                })?;
            samples.push(t0.elapsed().as_nanos() as f64);
            if !status.success() {
                return Err(Error::Setup(format!(
                    "native systest exit 0 failed: {status}"
                )));
            }
        }
        Figure::from_samples(samples).ok_or_else(|| Error::Setup("no native start samples".into()))
    }
}

impl Drop for NativeSystest {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The figures in `bench NAME median_ns=.. min_ns=.. max_ns=..` and
/// `bench_sample NAME NS` lines.
fn parse_bench_lines(text: &str) -> BTreeMap<String, Figure> {
    let mut figures = BTreeMap::new();
    // Per-page figures the guest reports one sample at a time.
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("bench") => {
                let Some(name) = words.next() else { continue };
                if let Some(ns) = name.strip_prefix("kernel_entry_ns=") {
                    if let Ok(ns) = ns.parse::<f64>() {
                        figures.insert(
                            "kernel_entry".to_string(),
                            Figure {
                                median_ns: ns,
                                min_ns: ns,
                                max_ns: ns,
                            },
                        );
                    }
                    continue;
                }
                let field = |key: &str| -> Option<f64> {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(key))
                        .and_then(|v| v.parse().ok())
                };
                if let (Some(median_ns), Some(min_ns), Some(max_ns)) =
                    (field("median_ns="), field("min_ns="), field("max_ns="))
                {
                    if !SAMPLED.contains(&name) {
                        figures.insert(
                            name.to_string(),
                            Figure {
                                median_ns,
                                min_ns,
                                max_ns,
                            },
                        );
                    }
                }
            }
            Some("bench_sample") => {
                if let (Some(name), Some(v)) =
                    (words.next(), words.next().and_then(|v| v.parse().ok()))
                {
                    samples.entry(name.to_string()).or_default().push(v);
                }
            }
            _ => {}
        }
    }
    for (name, v) in samples {
        if let Some(f) = Figure::from_samples(v) {
            figures.insert(name, f);
        }
    }
    figures
}

/// Boot stages, each a list of samples in ns.
struct BootStages {
    kernel_entry: Vec<f64>,
    init_first: Vec<f64>,
    to_exit: Vec<f64>,
}

/// Times whole `vkernel run` processes whose /init exits at once: the wall
/// time of each, and the stages the guest kernel reports with `boottrace`
/// (host clock, from vkernel's start).
fn boot_to_exit(runs: usize) -> Result<(BootStages, u64), Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        what: "finding vkernel",
        source,
    })?;
    let mut st = BootStages {
        kernel_entry: Vec::new(),
        init_first: Vec::new(),
        to_exit: Vec::new(),
    };
    let stage = |text: &str, what: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(what))
            .and_then(|rest| rest.trim_end_matches(" ns").trim().parse().ok())
    };
    for _ in 0..runs {
        let t0 = Instant::now();
        let out = Command::new(&exe)
            .args(["run", "--append", "boottrace init=/bin/systest -- exit 0"])
            .stdout(Stdio::null())
            .output()
            .map_err(|source| Error::Io {
                what: "running vkernel",
                source,
            })?;
        st.to_exit.push(t0.elapsed().as_nanos() as f64);
        if !out.status.success() {
            return Err(Error::Setup(format!("boot run failed: {}", out.status)));
        }
        let text = String::from_utf8_lossy(&out.stderr);
        st.kernel_entry
            .extend(stage(&text, "boot: kernel entry at "));
        st.init_first
            .extend(stage(&text, "boot: /init first instruction at "));
    }
    // One more run reports its memory: host RSS beyond guest memory.
    let out = Command::new(&exe)
        .args(["run", "--stats", "--append", "exit=0"])
        .stdout(Stdio::null())
        .output()
        .map_err(|source| Error::Io {
            what: "running vkernel",
            source,
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let overhead = stderr
        .split("host overhead ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Setup(format!("no stats line in: {stderr}")))?;
    Ok((st, overhead))
}

/// `vkernel bench`.
pub fn run(args: &BenchArgs) -> Result<(), Error> {
    let (reps, iters) = if args.quick { (5, 500) } else { (9, 5000) };
    let mut floor_samples = floor(reps, iters)?;
    // Like the floor, half at the start and half at the end of the run.
    let mut syscall_exit = Vec::new();
    if args.floor_only {
        let f = Figure::from_samples(floor_samples)
            .ok_or_else(|| Error::Setup("no floor samples".into()))?;
        crate::say!(
            "bench floor median_ns={:.0} min_ns={:.0} max_ns={:.0}",
            f.median_ns,
            f.min_ns,
            f.max_ns
        );
        return Ok(());
    }
    syscall_exit.extend(bare_exits(BareLoop::Syscall, reps, iters)?);
    let mut figures = guest_figures(
        true,
        if args.quick {
            "bench=quick"
        } else {
            "bench=all"
        },
    )?;
    // fork+exit+wait and first touch need the process layer: a program of
    // the default image, on both paths a process's memory can take.
    let forks = if args.quick { 10 } else { 50 };
    let pages = if args.quick { 256 } else { 2048 };
    for (pmap, suffix) in [("host", ""), ("guest", "_guest")] {
        for mode in [
            format!("forkbench {forks}"),
            format!("touchbench {pages}"),
            format!("threadbench {}", forks * 10),
        ] {
            let append = format!("pmap={pmap} init=/bin/systest -- {mode}");
            for (name, figure) in guest_figures(false, &append)? {
                figures.insert(format!("{name}{suffix}"), figure);
            }
        }
    }
    // Files and pipes, on both paths and natively.
    let mib = if args.quick { "8" } else { "64" };
    for (pmap, suffix) in [("host", ""), ("guest", "_guest")] {
        let append = format!("pmap={pmap} init=/bin/systest -- filebench {mib}");
        for (name, figure) in guest_figures_with(false, &append, 256)? {
            figures.insert(format!("{name}{suffix}"), figure);
        }
    }
    // The time calls, through the vDSO and as a system call. Quick runs
    // take a hundredth: without an invariant TSC (QEMU's CPU models) every
    // vDSO call is a system call, four exits, and a tenth took minutes
    // under emulation.
    let calls = if args.quick { "2000" } else { "200000" };
    for (pmap, suffix) in [("host", ""), ("guest", "_guest")] {
        let append = format!("pmap={pmap} init=/bin/systest -- clockbench {calls}");
        for (name, figure) in guest_figures(false, &append)? {
            figures.insert(format!("{name}{suffix}"), figure);
        }
    }
    // Every process-level benchmark natively, with the same arguments:
    // its figure's name is the guest's without the `_guest` suffix.
    let native_systest = NativeSystest::new()?;
    let mut native = BTreeMap::new();
    for mode in [
        vec!["filebench", mib],
        vec!["forkbench", &forks.to_string()],
        vec!["touchbench", &pages.to_string()],
        vec!["threadbench", &(forks * 10).to_string()],
        vec!["clockbench", calls],
    ] {
        native.extend(native_systest.figures(&mode)?);
    }
    floor_samples.extend(floor(reps, iters)?);
    syscall_exit.extend(bare_exits(BareLoop::Syscall, reps, iters)?);
    // Boots vary with the machine underneath (README "Boot"): 20 give a
    // steadier median than 10, for 60 ms more.
    let boot_runs = if args.quick { 3 } else { 20 };
    let (boot, overhead_kib) = boot_to_exit(boot_runs)?;
    native.insert(
        "boot_to_exit".into(),
        native_systest.start_to_exit(boot_runs)?,
    );
    drop(native_systest);
    for (name, v) in [
        ("kernel_entry", boot.kernel_entry),
        ("init_first_instruction", boot.init_first),
    ] {
        if let Some(f) = Figure::from_samples(v) {
            figures.insert(name.into(), f);
        }
    }
    let floor = Figure::from_samples(floor_samples)
        .ok_or_else(|| Error::Setup("no floor samples".into()))?;
    figures.insert("floor".into(), floor);
    if let Some(exit) = Figure::from_samples(syscall_exit) {
        figures.insert("syscall_exit".into(), exit);
        // Medians add: the two loops ran minutes apart, so no per-sample sum.
        figures.insert(
            "syscall_design_floor".into(),
            Figure {
                median_ns: floor.median_ns + exit.median_ns,
                min_ns: floor.min_ns + exit.min_ns,
                max_ns: floor.max_ns + exit.max_ns,
            },
        );
    }
    if let Some(b) = Figure::from_samples(boot.to_exit) {
        figures.insert("boot_to_exit".into(), b);
    }

    crate::say!(
        "{:<24} {:>12} {:>12} {:>12} {:>8} {:>9}  what",
        "figure",
        "median µs",
        "min µs",
        "max µs",
        "ratio",
        "÷ native"
    );
    let mut json = serde_json::Map::new();
    for (name, what) in FIGURES {
        let Some(f) = figures.get(*name) else {
            continue;
        };
        let ratio = f.median_ns / floor.median_ns;
        // The same benchmark natively (one figure for both pmaps' rows).
        let native_ns = native
            .get(name.trim_end_matches("_guest"))
            .map(|n| n.median_ns);
        let ratio_to_native = native_ns.map(|n| f.median_ns / n);
        let vs_native = ratio_to_native.map_or(String::new(), |r| format!("{r:.1}"));
        crate::say!(
            "{name:<24} {:>12.2} {:>12.2} {:>12.2} {:>8.3} {vs_native:>9}  {what}",
            f.median_ns / 1e3,
            f.min_ns / 1e3,
            f.max_ns / 1e3,
            ratio
        );
        json.insert(
            name.to_string(),
            serde_json::json!({
                "median_ns": f.median_ns, "min_ns": f.min_ns, "max_ns": f.max_ns,
                "ratio": ratio, "native_ns": native_ns,
                "ratio_to_native": ratio_to_native, "what": what,
            }),
        );
    }
    crate::say!("host memory overhead (RSS beyond resident guest memory) of a boot-and-exit run: {overhead_kib} KiB");
    json.insert("host_overhead_kib".into(), serde_json::json!(overhead_kib));
    if let Some(path) = &args.json {
        let text =
            serde_json::to_string_pretty(&serde_json::Value::Object(json)).unwrap_or_default();
        std::fs::write(path, text).map_err(|source| Error::ReadFile {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}
