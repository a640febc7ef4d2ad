//! vkernel: a virtual kernel that runs as an ordinary host process.
//!
//! The path of a hypercall, top-down: the guest kernel's `out` (guest
//! `hypercall.rs`, the block built by `Call::encode`) → `machine/mod.rs`
//! (`KVM_RUN` exit, by port) → `hypercall.rs` (block read through
//! `KernelRam`, `Call::decode`, one `match`) → the `vmspace` crate
//! (registry, map, page tables in the host pool).

pub mod bench;
pub mod cli;
pub mod clock;
pub mod console;
pub mod crash;
pub mod error;
pub mod gdb;
pub mod hooks;
pub mod hostfs;
pub mod hostmem;
pub mod hypercall;
pub mod idle;
pub mod images;
pub mod input;
pub mod jail;
pub mod machine;
pub mod process;
pub mod program;
pub mod sandbox;
pub mod slice_timer;
pub mod teardown;
pub mod terminal;
pub mod trap_area;
pub mod vcpu;
pub mod vm;

use std::borrow::Cow;

pub use error::Error;
use machine::{Machine, Outcome};

static HOST_START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// When this host process started (the first call fixes it; `main` calls
/// it first thing). The guest's clock hypercall counts from here, so boot
/// stages can be timed from the host's start.
pub fn host_start() -> std::time::Instant {
    *HOST_START.get_or_init(std::time::Instant::now)
}

/// Marks the host's start-up and teardown stages: with
/// `RUST_LOG=vkernel::boot=debug`, one line per stage with its end (µs
/// since [`host_start`]) and its own cost, to see where a boot's time goes.
pub(crate) struct Stages {
    last: std::time::Instant,
}

impl Stages {
    /// Stages timed from the host's start.
    pub(crate) fn new() -> Stages {
        Stages { last: host_start() }
    }

    /// Stages timed from now (the first one's cost counts from here).
    pub(crate) fn from_now() -> Stages {
        Stages {
            last: std::time::Instant::now(),
        }
    }

    /// Logs the end of `stage`, begun at the previous mark.
    pub(crate) fn mark(&mut self, stage: &str) {
        if log::log_enabled!(target: "vkernel::boot", log::Level::Debug) {
            let now = std::time::Instant::now();
            log::debug!(
                target: "vkernel::boot",
                "{stage}: done at {} us, took {} us",
                now.duration_since(host_start()).as_micros(),
                now.duration_since(self.last).as_micros()
            );
            self.last = now;
        }
    }
}

/// Exit code when the host stopped the guest (crash, protocol violation).
pub const EXIT_GUEST_STOPPED: u8 = 2;

/// This process's resident set (VmRSS) in KiB, 0 if unknown.
pub fn resident_kib() -> u64 {
    std::fs::File::open("/proc/self/status")
        .map(|f| resident_kib_from(&f))
        .unwrap_or(0)
}

/// VmRSS in KiB from an open /proc/self/status (read from its start, so
/// it can be opened before the sandbox forbids opening files).
pub fn resident_kib_from(status: &std::fs::File) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 8192];
    let n = status.read_at(&mut buf, 0).unwrap_or(0);
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Boots the guest described by `args` and runs it to the end. Returns the
/// process exit code: the guest's status, or [`EXIT_GUEST_STOPPED`].
pub fn run(args: &cli::RunArgs) -> Result<u8, Error> {
    let mut stages = Stages::new();
    stages.mark("command line and logger");
    if let (Some(addr), false) = (&args.gdb, args.gdb_allow_remote) {
        gdb::check_loopback(addr)?;
    }
    // The gdb socket is bound in the host's network namespace, before a
    // jail leaves it.
    let mut gdb_listener = None;
    if let Some(dir) = &args.jail {
        jail::check_dir(dir)?;
        if let Some(addr) = &args.gdb {
            let l = std::net::TcpListener::bind(addr).map_err(|source| Error::Gdb {
                addr: addr.clone(),
                source,
            })?;
            gdb_listener = Some(l);
        }
        use std::os::fd::AsRawFd;
        let keep = gdb_listener.as_ref().map(|l| l.as_raw_fd());
        if let Some(status) = jail::enter_namespaces(keep)? {
            // The parent: the jailed child has ended.
            return Ok(status);
        }
    }
    // The VM's KVM side is made on a thread from here (after the jail's
    // fork: a VM belongs to the process that made it).
    let prep = vm::Vm::prepare(&args.kvm)?;
    stages.mark("KVM opened, the VM's thread started, the VM made");
    // Built-ins are used in place (no copy: they are megabytes of RSS).
    let kernel_bytes: Cow<'static, [u8]> = match &args.kernel {
        // The kernel is loaded into guest RAM: no larger than --memory.
        Some(p) => Cow::Owned(input::read_regular("--kernel", p, args.memory << 20)?),
        None if args.test_kernel => Cow::Borrowed(images::TEST_KERNEL),
        None => Cow::Borrowed(images::KERNEL),
    };
    let name = |p: &Option<std::path::PathBuf>| match p {
        Some(p) => p.display().to_string(),
        None => "built-in".to_string(),
    };
    let kernel_name = match &args.kernel {
        None if args.test_kernel => "built-in test kernel".to_string(),
        p => name(p),
    };
    let host_dirs = program::host_dirs(args)?;
    let (image_bytes, image_name, init) = program::image_for(args)?;
    let wanted = args.memory + args.pool + hostmem::OVERHEAD_MIB;
    let (pool_mib, warning) =
        hostmem::cap_pool(args.pool, args.memory, hostmem::backable_mib_for(wanted));
    if let Some(w) = warning {
        crate::report!("vkernel: {w}");
    }
    stages.mark("inputs (images, host directories, pool size)");
    let cfg = vm::MemoryConfig {
        ram_bytes: args.memory << 20,
        pool_bytes: pool_mib << 20,
        kvm_path: args.kvm.clone(),
        teardown_helper: true,
    };
    let vm = prep.start(&cfg)?;
    stages.mark("VM memory and kernel address space (KVM on a thread)");
    let mut loaded = loader::load(
        vm.mem(),
        cfg.ram_bytes,
        cfg.pool_bytes,
        &loader::Blob {
            name: kernel_name,
            bytes: &kernel_bytes,
        },
        &loader::Blob {
            name: image_name.clone(),
            bytes: &image_bytes,
        },
        &args.cmdline(init.as_deref()),
    )?;
    loader::set_console_kinds(vm.mem(), &mut loaded, console::stdio_kinds())?;
    stages.mark("loading the kernel and the image");
    // The built-in kernel starts /init (unless told `init=PATH`): refuse an
    // image whose /init it could not run, in one line, before booting.
    let custom_init = init.is_some()
        || args
            .append
            .split_ascii_whitespace()
            .any(|w| w.starts_with("init="));
    if args.kernel.is_none() && !args.test_kernel && !custom_init {
        if let Err(problem) = program::check_init(&image_bytes) {
            return Err(Error::Load(loader::LoadError::BadImage {
                name: image_name,
                problem,
            }));
        }
    }
    stages.mark("checking /init");
    // What needs no VM comes first, while the VM's thread may still be at
    // work: the host directories (opened now: the sandbox allows no path
    // but beneath them), /proc/self/status for --stats (the sandbox
    // forbids opening files), and the sandbox made ready.
    let dirs: Vec<(&std::path::Path, bool)> =
        host_dirs.iter().map(|(p, rw)| (p.as_path(), *rw)).collect();
    let hostfs = hostfs::HostFs::with_access(&dirs).map_err(|e| Error::Setup(e.to_string()))?;
    let status = if args.stats {
        std::fs::File::open("/proc/self/status").ok()
    } else {
        None
    };
    let role = sandbox::Role::Vcpu {
        debugger: args.gdb.is_some(),
        hostfs: hostfs.open_mode(),
        hostfs_writes: hostfs.writes(),
    };
    let mut sandbox = sandbox::prepare(role, !args.no_seccomp)?;
    // Privileges go now unless something below needs one: the jail's
    // pivot, or binding the debugger's port (which may be below 1024).
    if args.jail.is_none() && args.gdb.is_none() {
        sandbox.drop_privileges()?;
    }
    stages.mark("host directories, the sandbox's filter, privileges dropped");
    let mut vm = vm.finish()?;
    stages.mark("KVM: VM, vCPU, memory slots (waited for)");
    // Started with the vCPU, on the thread that made it.
    let background = vm.teardown.take();
    vm.enter_kernel(loaded.entry)?;
    let mut machine = Machine::new(vm)?;
    machine.set_clock(args.clock);
    machine.set_hostfs(hostfs);
    if let Some(addr) = &args.gdb {
        let listener = match gdb_listener.take() {
            Some(l) => Ok(l),
            None => std::net::TcpListener::bind(addr),
        };
        let stub = listener
            .and_then(|l| gdb::Gdb::listen(l, &kernel_bytes, !args.no_seccomp))
            .map_err(|source| Error::Gdb {
                addr: addr.clone(),
                source,
            })?;
        machine.set_hooks(Box::new(stub));
    }
    // Raw mode for the run when stdin is a terminal; restored when the
    // guard drops (every return below) and on the other ways out.
    let _raw = terminal::Raw::enter().map_err(|source| Error::Io {
        what: "putting the terminal in raw mode",
        source,
    })?;
    if let Some(dir) = &args.jail {
        jail::pivot(dir)?;
    }
    stages.mark("vCPU registers, run loop, terminal");
    sandbox.enter()?;
    stages.mark("sandbox (capabilities, seccomp)");
    if args.seccomp_selftest {
        // A call no thread of vkernel makes once running.
        // SAFETY: socket() with integer arguments; the filter stops it.
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    }
    let outcome = machine.run()?;
    stages.mark("guest run (first KVM_RUN to the guest's end)");
    if args.stats {
        let s = machine.stats;
        let rss = status.as_ref().map_or(0, resident_kib_from);
        let guest = machine.guest().resident_kib();
        let (batches, returned) = machine.guest().registry.pool().return_stats();
        let hostfs = machine.hostfs();
        if hostfs.open_mode().is_some() {
            crate::report!(
                "vkernel: stats: hostfs: {} walks, {} file bytes read from the host, {} written to it",
                hostfs.walks,
                hostfs.bytes_read,
                hostfs.bytes_written
            );
        }
        crate::report!(
            "vkernel: stats: {} exits, {} hypercalls, {} faults resolved by the host, {} traps to the guest kernel, {} translation flushes, {} process faults (T_PROTFLT for exits a process may not make), {} pool pages given back to the host in {} batches; host RSS {rss} KiB, of which guest memory {guest} KiB, host overhead {} KiB",
            s.exits,
            s.hypercalls,
            s.faults_resolved,
            s.traps_delivered,
            s.translation_flushes,
            s.process_faults,
            returned,
            batches,
            rss.saturating_sub(guest)
        );
        let spare = machine.guest().registry.spare_stats();
        crate::report!(
            "vkernel: stats: dead vmspaces taken over: {} by clones, {} shadows by fresh vmspaces ({} shadow leaves rewritten)",
            spare.clones,
            spare.shadows,
            spare.leaves_rewritten
        );
        crate::report!("vkernel: stats: {}", s.breakdown());
    }
    // Destroying each vmspace would only give its pages back to a pool
    // that goes with the process (its exit, or the helper's).
    let running = match background {
        Some(_) => machine.running_vmspaces(),
        None => machine.teardown(),
    };
    stages.mark("vmspace teardown");
    for id in running {
        log::warn!("vmspace {id:#x} was running when the guest kernel ended; released");
    }
    match background {
        // Guest memory goes now; the helper destroys the VM once this
        // process has exited (see `teardown`).
        Some(t) => {
            machine.leave_to_exit();
            t.leave_to_exit();
            stages.mark("VM left to the teardown helper");
        }
        None => {
            drop(machine);
            stages.mark("VM teardown (KVM's VM destroyed, guest memory unmapped)");
        }
    }
    Ok(match outcome {
        Outcome::Exited(status) => (status & 0xff) as u8,
        Outcome::Stopped => EXIT_GUEST_STOPPED,
    })
}
