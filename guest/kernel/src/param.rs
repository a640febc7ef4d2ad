//! The kernel's limits and defaults, in one place (xv6's param.h).

/// Pids are below this and wrap to [`RESERVED_PIDS`] (Linux's default
/// `pid_max`, `PID_MAX_DEFAULT`).
pub const PID_MAX: u32 = 32768;
/// Where pids start again after the wrap (Linux's `RESERVED_PIDS`: the
/// low pids stay with the daemons that started first).
pub const RESERVED_PIDS: u32 = 300;

/// The fewest tasks `threads-max` allows (Linux's `MIN_THREADS`).
pub const MIN_THREADS: u64 = 20;
/// The most (Linux's `MAX_THREADS`, `FUTEX_TID_MASK`: a tid must fit a
/// robust futex word).
pub const MAX_THREADS: u64 = 0x3fff_ffff;
/// Pages of memory per task `threads-max` assumes: Linux sizes the task
/// table so that the tasks' kernel stacks (`THREAD_SIZE`, 16 KiB on
/// x86-64) take at most an eighth of memory.
pub const PAGES_PER_THREAD: u64 = 8 * 4;
/// Kernel heap left free when a task is made (this, or an eighth of the
/// heap if more): a fork or thread that would leave less is `EAGAIN` (a
/// task's records, FPU image, descriptor table and regions take about
/// 4 KiB; the rest keeps room for the calls of the tasks already running,
/// glibc aborts when a thread's munmap fails). The heap, an eighth of
/// `--memory`, not a constant, bounds the table: some 1,600 tasks with
/// the default 64 MiB.
pub const TASK_HEAP_HEADROOM: u64 = 256 << 10;

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

// exec's strings follow Linux's rule (a quarter of RLIMIT_STACK): see
// `proc::exec::arg_limit`.

/// Default time slice (the RUN timeout), microseconds.
pub const SLICE_US: u64 = 10_000;
/// The range `slice_us=` may set.
pub const SLICE_US_RANGE: (u64, u64) = (100, 10_000_000);

/// Most file locks (record and flock) held at once, system-wide; past it
/// a lock is `ENOLCK`. Bounds the kernel heap locks can take (Linux's
/// bound is its memory).
pub const MAX_LOCKS: usize = 1 << 14;
