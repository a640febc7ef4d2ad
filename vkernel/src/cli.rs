//! The command line: plain data, parsed by clap, turned into a
//! [`RunConfig`] that the VM is built from.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// vkernel: a virtual kernel that runs as an ordinary host process.
///
/// It boots a small guest kernel on one KVM vCPU (the kernel runs
/// deprivileged, in ring 3) and gives it DragonFly BSD's vmspace system
/// calls as hypercalls. With no subcommand it runs the built-in kernel on
/// the built-in default image.
#[derive(Parser, Debug)]
#[command(name = "vkernel", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Boot a guest kernel with an image and run it until it exits; vkernel
    /// exits with the guest's exit status, 1 if it refused its input before
    /// running, 2 if it stopped a crashed or misbehaving guest.
    ///
    /// When stdin is a terminal, it is in raw mode for the run: every key,
    /// Ctrl-C and Ctrl-Z included, goes to the guest's terminal (its line
    /// discipline echoes, edits lines and sends signals to the foreground
    /// job). Ctrl-] then q ends the run whatever the guest does (exit
    /// status 130); Ctrl-] twice sends one Ctrl-]. The terminal's settings
    /// are restored however the run ends.
    Run(Box<RunArgs>),
    /// Run the hypercall test suite: boots the built-in test kernel with
    /// `test=hypercalls`, which calls every hypercall with good and bad
    /// arguments and prints one line per case and `N passed, N failed`.
    /// Exits non-zero if any case fails.
    Test(TestArgs),
    /// Measure every path as a ratio to a raw KVM exit taken in the same run
    /// (the floor: a bare VM whose vCPU loops on `out` in ring 3), and print
    /// a table (median, spread, ratio); `--json FILE` also writes it as JSON.
    Bench(BenchArgs),
}

/// Options of `vkernel bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Also write the figures as JSON (`{"syscall": {"median_ns": .., "ratio": ..}, ..}`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// A short run (a tenth of the iterations) that only checks the
    /// benchmarks work; its figures are noisier.
    #[arg(long)]
    pub quick: bool,

    /// Measure only the floor (a raw KVM exit round trip in a bare VM)
    /// and print it: what `bench/peers.sh` records next to its peers.
    #[arg(long, conflicts_with = "json")]
    pub floor_only: bool,
}

/// Options of `vkernel test`.
#[derive(Args, Debug, Clone)]
pub struct TestArgs {
    /// Guest kernel memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(16..=3072))]
    pub memory: u64,

    /// Host pool in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(8..=65536))]
    pub pool: u64,
}

impl TestArgs {
    /// The `run` these options stand for.
    pub fn to_run_args(&self) -> RunArgs {
        RunArgs {
            memory: self.memory,
            pool: self.pool,
            append: "test=hypercalls".into(),
            test_kernel: true,
            ..RunArgs::default()
        }
    }
}

/// Options of `vkernel run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Guest kernel: an x86-64 ELF executable linked at a fixed address at or
    /// above 1 MiB (default: the built-in kernel). Like --image, the files
    /// under --rootfs and PROGRAM, it must be a regular file no larger than
    /// --memory.
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,

    /// Boot the built-in test kernel instead of the real one. It runs no
    /// processes; --append says what it does: `test=hypercalls` (the suite
    /// `vkernel test` runs), `test=fuzz:N seed=S` (N random hypercalls),
    /// `bench=all|quick` (the in-guest benchmarks), `fault=KIND` or
    /// `hcfault=KIND` (crash or break the hypercall protocol on purpose:
    /// KIND is null, ud, gp, div, trap, spin, idle; or outside, across,
    /// unaligned, unknown).
    #[arg(long, conflicts_with = "kernel")]
    pub test_kernel: bool,

    /// Image the guest kernel reads its files from: a cpio "newc" archive,
    /// as `find . | cpio -o -H newc > my.cpio` makes (default: the built-in
    /// image). `busybox` names the image `images/busybox/build.sh` makes.
    /// The guest unpacks it into a writable tmpfs root.
    #[arg(long, value_name = "CPIO")]
    pub image: Option<PathBuf>,

    /// A host directory mounted as the guest's root, read-only beneath a
    /// writable tmpfs layer (copy-up, as overlayfs): the host directory
    /// is served through the hostfs hypercalls, never written, and
    /// nothing outside it can be reached. /dev, /proc and /tmp are
    /// mounted on top. Without a program, runs /bin/sh.
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    pub rootfs: Option<PathBuf>,

    /// Mount host directory HOST at GUEST (an absolute path), read-only
    /// (`:ro`, the default), or writable through to the host (`:rw`:
    /// every change made beneath HOST, never outside it). Repeatable.
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro|:rw]")]
    pub volume: Vec<String>,

    /// Set an environment variable for init (repeatable); init also gets
    /// PATH, HOME and TERM defaults unless given here.
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,

    /// Guest kernel memory in MiB: identity-mapped RAM holding the kernel,
    /// the image and everything the kernel allocates (16..=3072).
    #[arg(long, value_name = "MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(16..=3072))]
    pub memory: u64,

    /// Host pool in MiB: memory the host owns for process address spaces
    /// (their pages and page tables). Reserved lazily; only touched pages
    /// cost host memory, and freed pages beyond 16 MiB go back to the host
    /// (8..=65536). More than the host can back beside --memory
    /// (MemAvailable + SwapFree, RLIMIT_AS, the cgroup's memory.max) is
    /// capped to it, with a warning.
    #[arg(long, value_name = "MIB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(8..=65536))]
    pub pool: u64,

    /// Kernel command line, read by the guest kernel (e.g. "exit=3",
    /// "init=/bin/sh -- -c 'echo hi'"; see the README for every argument).
    #[arg(long, value_name = "KERNEL ARGS", default_value = "")]
    pub append: String,

    /// Who keeps the processes' page tables (adds `pmap=...` to the kernel
    /// command line): `host`, the default, has the host manage each
    /// process's memory through the vmspace calls; `guest` has the guest
    /// kernel keep them in its own RAM (demand paging, copy-on-write fork)
    /// and the host follow them (MAP_VPAGETABLE), as DragonFly's vkernel
    /// runs. Process memory then comes out of --memory, not --pool.
    #[arg(long, value_name = "WHO")]
    pub pmap: Option<Pmap>,

    /// Where the guest reads the time: `tsc` (the default) has the host
    /// publish a clock page (pvclock layout) the guest kernel reads with
    /// `rdtsc`, no exit per reading, when the host's TSC is invariant;
    /// `hypercall` makes every reading a `clock` hypercall (the fallback,
    /// and what a host without an invariant TSC gets).
    #[arg(long, value_name = "SOURCE", default_value = "tsc")]
    pub clock: crate::clock::ClockSource,

    /// At exit, print counters on stderr: VM exits, hypercalls, faults the
    /// host resolved, traps delivered, translation flushes, process faults
    /// (exits a process may not make, given to the guest kernel as
    /// T_PROTFLT), pool pages given back to the host, host RSS and how much
    /// of it is guest memory.
    #[arg(long)]
    pub stats: bool,

    /// Run without the seccomp-BPF system-call filter (for debugging, e.g.
    /// under strace or with a host change that needs a new call). The run
    /// still drops its capabilities and sets no-new-privileges.
    #[arg(long)]
    pub no_seccomp: bool,

    /// Test-only: make a system call the filter forbids right after
    /// installing it (the test of the violation path).
    #[arg(long, hide = true)]
    pub seccomp_selftest: bool,

    /// Jail the run (Firecracker's jailer): vkernel enters new mount, PID
    /// and network namespaces (and a user namespace when not run as root)
    /// and forks; the child, PID 1 there, builds the VM and, before the
    /// first KVM_RUN, makes DIR (an existing directory, best empty; it is
    /// bind-mounted read-only) its root with pivot_root. It keeps only
    /// the descriptors it opened during setup (KVM, the host directories
    /// of --rootfs/-v, the console, the gdb socket). The parent waits
    /// outside and exits with the child's status.
    #[arg(long, value_name = "DIR")]
    pub jail: Option<PathBuf>,

    /// The KVM device to open.
    #[arg(long, value_name = "PATH", default_value = "/dev/kvm")]
    pub kvm: PathBuf,

    /// Debug the guest with gdb: listen on HOST:PORT (e.g. 127.0.0.1:1234)
    /// and stop before the guest kernel's first instruction until gdb
    /// connects (`target remote HOST:PORT`).
    ///
    /// The stub has no authentication (whoever connects can read and
    /// write guest memory): an address that is not loopback is refused
    /// unless --gdb-allow-remote is given too.
    #[arg(long, value_name = "HOST:PORT")]
    pub gdb: Option<String>,

    /// Let --gdb listen on an address other than loopback (0.0.0.0:1234,
    /// a LAN address): anyone who can reach it controls the guest.
    #[arg(long, requires = "gdb")]
    pub gdb_allow_remote: bool,

    /// A program and its arguments (after `--`). Alone: a static x86-64
    /// Linux program on the host, packed as /init of an image made on the
    /// fly, e.g. `vkernel run -- ./hello world` (build it with `gcc
    /// -static`). With --image or --rootfs: the program inside the image
    /// to run as init (searched in PATH without a `/`), e.g.
    /// `vkernel run --image busybox -- sh -c 'ls /'`.
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub program: Vec<String>,
}

/// Who keeps the processes' page tables (`--pmap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Pmap {
    /// The host (vmspace mmap, clone, pread/pwrite).
    Host,
    /// The guest kernel (MAP_VPAGETABLE over its own RAM).
    Guest,
}

impl RunArgs {
    /// The kernel command line: `--append`, plus `pmap=` for `--pmap` and
    /// `init=` for a program run from the image.
    pub fn cmdline(&self, init: Option<&str>) -> String {
        let mut words = Vec::new();
        match self.pmap {
            None => {}
            Some(Pmap::Host) => words.push("pmap=host".to_string()),
            Some(Pmap::Guest) => words.push("pmap=guest".to_string()),
        }
        if let Some(init) = init {
            words.push(format!("init={init}"));
        }
        if self.rootfs.is_some() {
            words.push("root=host".to_string());
        }
        // `/guest` or `/guest:rw` (a guest path holds no `:`: it is
        // split on it).
        let guests: Vec<String> = self
            .volume
            .iter()
            .filter_map(|v| {
                let mut parts = v.split(':');
                let guest = parts.nth(1)?;
                Some(match parts.next() {
                    Some("rw") => format!("{guest}:rw"),
                    _ => guest.to_string(),
                })
            })
            .collect();
        if !guests.is_empty() {
            words.push(format!("volumes={}", guests.join(",")));
        }
        if !self.append.is_empty() {
            words.push(self.append.clone());
        }
        words.join(" ")
    }
}

impl Default for RunArgs {
    fn default() -> Self {
        RunArgs {
            kernel: None,
            test_kernel: false,
            image: None,
            rootfs: None,
            volume: Vec::new(),
            env: Vec::new(),
            memory: 64,
            pool: 1024,
            append: String::new(),
            pmap: None,
            stats: false,
            kvm: PathBuf::from("/dev/kvm"),
            program: Vec::new(),
            gdb: None,
            gdb_allow_remote: false,
            jail: None,
            no_seccomp: false,
            clock: crate::clock::ClockSource::Tsc,
            seccomp_selftest: false,
        }
    }
}
