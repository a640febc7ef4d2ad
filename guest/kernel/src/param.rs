//! The kernel's limits and defaults, in one place (xv6's param.h).

/// Most processes at once (`fork` past it is `EAGAIN`).
pub const NPROC: usize = 64;
/// Most tasks (threads of all processes) at once: the table grows up to
/// this; a thread past it is `EAGAIN`. Each costs a slot and an FPU image
/// (a few KiB of kernel heap).
pub const NTASK: usize = 1024;
/// Pids wrap to 2 after this (Linux's default `pid_max`).
pub const PID_MAX: u32 = 32767;

/// Most regions per address space (Linux's `vm.max_map_count`).
pub const MAX_MAP_COUNT: usize = 65530;

/// Resource limits kept per process (`RLIMIT_*` up to `RLIMIT_RTTIME`).
pub const NRLIMIT: usize = 16;
/// `RLIM_INFINITY`.
pub const RLIM_INFINITY: u64 = u64::MAX;
/// Default stack size (`RLIMIT_STACK`), and what exec reserves.
pub const STACK_BYTES: u64 = 8 << 20;
/// Open files: Linux's default soft and hard `RLIMIT_NOFILE`.
pub const NOFILE: [u64; 2] = [1024, 4096];

/// Bytes of argument and environment strings exec accepts (with NULs).
pub const ARG_BYTES: usize = 32 * 1024;
/// Most argument plus environment strings.
pub const MAX_ARGS: usize = 512;

/// Default time slice (the RUN timeout), microseconds.
pub const SLICE_US: u64 = 10_000;
/// The range `slice_us=` may set.
pub const SLICE_US_RANGE: (u64, u64) = (100, 10_000_000);

/// Most file locks (record and flock) held at once, system-wide; past it
/// a lock is `ENOLCK`. Bounds the kernel heap locks can take (Linux's
/// bound is its memory).
pub const MAX_LOCKS: usize = 1 << 14;
