//! The vkernel hypercall ABI: the one source of truth shared by the host
//! (`vkernel`, `vmspace`, `loader`) and the guest kernel.
//!
//! A hypercall is one `out dx, eax` executed by the guest kernel (ring 3,
//! its TSS I/O bitmap opens the hypercall ports): `dx = HC_PORT_BASE + nr`,
//! `eax` = guest-physical address of a [`HypercallBlock`] below 4 GiB. The
//! host reads the block, does the call, writes `ret`/`errno` back into the
//! block and resumes the guest after the `out`. One VM exit per call.
//!
//! Everything both sides must agree on lives here: port numbers, hypercall
//! numbers, the argument block and the typed calls it carries
//! ([`Call`]), errno values, the DragonFly trap frame and
//! trap numbers, `PROT_`/`MAP_`/`MADV_` constants, page-table and
//! page-fault bits, the address-space layout
//! and the boot-info block.
#![no_std]
#![deny(missing_docs)]

pub mod call;
pub mod clock;
pub mod cpio;
pub mod elf;
pub mod errno;
pub mod frame;
pub mod layout;
pub mod mman;
pub mod paging;
pub mod pod;

pub use call::{Call, UnknownHypercall};
pub use errno::Errno;
pub use frame::{TrapFrame, VextFrame};
pub use pod::Pod;

/// First hypercall port: hypercall `nr` is `out` to `HC_PORT_BASE + nr`.
pub const HC_PORT_BASE: u16 = 0x500;
/// Number of hypercall ports opened to the guest kernel.
pub const HC_PORT_COUNT: u16 = 64;
/// Ports `TRAP_PORT_BASE + vector` (vectors 0..32) are used by the ring-0
/// exception stubs of the trap area (`out imm8, al`). No ring-3 context has
/// them in its I/O bitmap.
pub const TRAP_PORT_BASE: u16 = 0x40;
/// The one port a process may use: the `syscall` stub's `out`.
pub const SYSCALL_PORT: u16 = 0x60;

/// Hypercall numbers (`port - HC_PORT_BASE`).
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    /// Does nothing, returns 0: the floor the benchmarks compare against.
    Noop = 0,
    /// `console_write(buf, len, stream)`: write `len` bytes at
    /// guest-physical `buf` to the host console: its stdout, or its stderr
    /// when `stream` is 2. Returns `len`.
    ConsoleWrite = 1,
    /// `exit(status)`: end the run; the host exits with `status & 0xff`.
    Exit = 2,
    /// `clock(which)`: [`CLOCK_MONOTONIC`] (0): monotonic time in
    /// nanoseconds since the host started; [`CLOCK_REALTIME`] (1): wall-clock
    /// nanoseconds since the Unix epoch.
    Clock = 3,
    /// `pool_stats()`: host pool pages in use (vmspace memory and tables).
    PoolStats = 4,
    /// `console_read(buf, len)`: read console input into guest-physical
    /// `buf`. Returns the count, 0 at end of input; EAGAIN if none is ready.
    ConsoleRead = 5,
    /// `idle(deadline_ns)`: block the host until the monotonic clock
    /// reaches `deadline_ns` (0 = no deadline), console input is ready or
    /// the host terminal's size changed. Returns [`IDLE_INPUT`] |
    /// [`IDLE_WINCH`] bits, 0 for the deadline; a deadline already past
    /// makes it a poll of both.
    Idle = 6,
    /// `vmspace_create(id, type, data)`.
    VmspaceCreate = 8,
    /// `vmspace_destroy(id)`.
    VmspaceDestroy = 9,
    /// `vmspace_ctl(id, cmd, tframe, vframe, timeout_us)`.
    VmspaceCtl = 10,
    /// `vmspace_mmap(id, addr, len, prot, flags, fd, offset)`.
    VmspaceMmap = 11,
    /// `vmspace_munmap(id, addr, len)`.
    VmspaceMunmap = 12,
    /// `vmspace_pread(id, buf, nbyte, flags, offset)`.
    VmspacePread = 13,
    /// `vmspace_pwrite(id, buf, nbyte, flags, offset)`.
    VmspacePwrite = 14,
    /// `vmspace_mcontrol(id, addr, len, behav, value)`.
    VmspaceMcontrol = 15,
    /// `vmspace_mprotect(id, addr, len, prot)`: extension, as mprotect(2).
    VmspaceMprotect = 16,
    /// `vmspace_clone(src, dst)`: extension for fork: `dst` becomes an
    /// eager copy of `src` (anonymous and private pages copied, shared
    /// physical-memory mappings shared).
    VmspaceClone = 17,
    /// `vmspace_preadv(id, iov, iovcnt, flags, offset)`: extension, pread
    /// into a scatter list of kernel buffers (one exit for many pages).
    VmspacePreadv = 18,
    /// `vmspace_pwritev(id, iov, iovcnt, flags, offset)`: extension,
    /// pwrite from a gather list of kernel buffers.
    VmspacePwritev = 19,
    /// `console_winsize(buf)`: extension: the host terminal's size as
    /// Linux's `struct winsize` (rows, cols, xpixel, ypixel: four u16)
    /// at guest-physical `buf`. Returns how many size changes the host
    /// has seen; ENOTTY when its stdin is not a terminal.
    ConsoleWinsize = 20,
    /// `hostfs_root(volume)`: a new handle on the root directory of host
    /// directory `volume` (0: `--rootfs`, then each `--volume` in order).
    HostfsRoot = 21,
    /// `hostfs_walk(handle, name, name_len)`: a new handle on entry `name`
    /// (one component, guest-physical bytes) of directory `handle`; a
    /// symbolic link is not followed (the guest resolves links).
    HostfsWalk = 22,
    /// `hostfs_getattr(handle, buf)`: writes a [`HostfsStat`] at `buf`.
    HostfsGetattr = 23,
    /// `hostfs_readdir(handle, cookie, buf, len)`: Linux `dirent64`
    /// records of directory `handle` from position `cookie` (0: the
    /// start; then a record's `d_off`) into `buf`. Returns the bytes
    /// written, 0 at the end.
    HostfsReaddir = 24,
    /// `hostfs_read(handle, buf, len, off)`: reads up to `len` bytes (at
    /// most [`HOSTFS_IO_MAX`]) of regular file `handle` at `off` into
    /// `buf`. Returns the count, 0 at the end of the file.
    HostfsRead = 25,
    /// `hostfs_readlink(handle, buf, len)`: the target of symbolic link
    /// `handle` into `buf`; returns its length (cut at `len`).
    HostfsReadlink = 26,
    /// `hostfs_clunk(handle)`: drops a handle.
    HostfsClunk = 27,
    /// `hostfs_readv(handle, iov, iovcnt, off)`: reads the file range at
    /// `off` into the [`KernelIovec`] buffers in turn (the page cache's
    /// read-ahead: one exit for many pages). Returns the count.
    HostfsReadv = 28,
    /// `hostfs_create(dir, name, name_len, mode)`: makes entry `name` of
    /// directory `dir` on a writable volume (`O_CREAT | O_EXCL`: an
    /// existing name is `EEXIST`): a regular file, directory, fifo or
    /// socket as `mode`'s `S_IFMT` bits say, with its permission bits.
    /// Returns a new handle on it.
    HostfsCreate = 29,
    /// `hostfs_symlink(dir, name, name_len, target, target_len)`: makes
    /// symbolic link `name` pointing to `target`; returns a handle on it.
    HostfsSymlink = 30,
    /// `hostfs_link(handle, dir, name, name_len)`: makes `name` in `dir`
    /// a new link to `handle` (same volume).
    HostfsLink = 31,
    /// `hostfs_unlink(dir, name, name_len, flags)`: removes `name`
    /// (`flags` [`HOSTFS_REMOVEDIR`]: an empty directory).
    HostfsUnlink = 32,
    /// `hostfs_rename(olddir, oldname, oldname_len, newdir, newname,
    /// newname_len, flags)`: `renameat2` within one volume.
    HostfsRename = 33,
    /// `hostfs_writev(handle, iov, iovcnt, off)`: writes the
    /// [`KernelIovec`] buffers in turn to the file range at `off`.
    /// Returns the count.
    HostfsWritev = 34,
    /// `hostfs_setattr(handle, valid, mode, size, atime_ns, mtime_ns)`:
    /// the `HOSTFS_SET_*` bits of `valid` say which of permission bits,
    /// size, times apply.
    HostfsSetattr = 35,
    /// `hostfs_fsync(handle, datasync)`: `fsync` (or `fdatasync` when
    /// `datasync` is 1) of a file or directory.
    HostfsFsync = 36,
    /// `hostfs_chown(handle, uid, gid)`: `fchownat` as the host's
    /// unprivileged rules allow (`u32::MAX`: unchanged).
    HostfsChown = 37,
    /// `batch(entries, count)`: extension (Xen's multicall): carries out
    /// the `count` [`BatchEntry`]s at guest-physical `entries` in order,
    /// each entry's result written into it, and stops at the first whose
    /// result is not what it expected. Returns how many met their
    /// expectation (`count` when all did).
    Batch = 38,
    /// `vmspace_ctl_batch(entries, count, id, cmd, tframe, vframe,
    /// timeout_us)`: extension: the batch as [`Hypercall::Batch`], then,
    /// when every entry met its expectation, `vmspace_ctl` with the other
    /// arguments, in the same exit. An entry that did not: ECANCELED,
    /// nothing run.
    VmspaceCtlBatch = 39,
    /// `vmspace_copy(dst, dst_addr, src, src_addr, len)`: extension,
    /// copies `len` bytes (at most [`VMSPACE_COPY_MAX`]) from vmspace
    /// `src` at `src_addr` to vmspace `dst` at `dst_addr`, as a pread of
    /// the source then a pwrite of what came (one exit instead of two,
    /// and no kernel buffer: a pipe's writer handing data straight to a
    /// blocked reader). Returns the count, short at the first page either
    /// side has no entry for.
    VmspaceCopy = 40,
}

/// Most entries one `batch` or `vmspace_ctl_batch` carries.
pub const BATCH_MAX: u64 = 32;

/// [`BatchEntry::expect`] that any success meets (any `ret`, errno 0).
pub const BATCH_EXPECT_ANY: i64 = i64::MIN;

/// One call of a `batch` / `vmspace_ctl_batch`: hypercall `nr` with
/// `args` as its block would hold them. Only the vmspace calls that
/// neither switch context nor block may be batched (`noop`,
/// `pool_stats`, `vmspace_create`, `_destroy`, `_mmap`, `_munmap`,
/// `_pread`, `_pwrite`, `_preadv`, `_pwritev`, `_mcontrol`, `_mprotect`,
/// `_clone`): any other `nr` is that entry's EINVAL. The host writes
/// `ret`/`errno` as for the single call; entries after the one that
/// stopped the batch get `ret` -1, errno ECANCELED (not carried out).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchEntry {
    /// The hypercall number.
    pub nr: u64,
    /// The result the batch goes on after: `ret` equal to it with errno
    /// 0, or any success for [`BATCH_EXPECT_ANY`]. A pwrite expects its
    /// length: a short copy (a page that could not be had) stops the
    /// batch, so the guest learns of it before anything runs.
    pub expect: i64,
    /// Arguments, in the call's prototype order.
    pub args: [u64; 7],
    /// Result (`-1` on error), written by the host.
    pub ret: i64,
    /// 0 or a Linux errno value, written by the host.
    pub errno: i64,
}

impl BatchEntry {
    /// The entry for `call`, going on after a result of `expect`. Its
    /// result starts as ECANCELED (not carried out), so an entry the host
    /// never reached (a batch refused whole) cannot read as done.
    pub fn new(call: crate::Call, expect: i64) -> Self {
        BatchEntry {
            nr: call.hypercall() as u64,
            expect,
            args: call.encode().args,
            ret: -1,
            errno: crate::Errno::ECANCELED.0 as i64,
        }
    }

    /// `self` with its result reset to not carried out (to send again).
    pub fn new_unsent(self) -> Self {
        BatchEntry {
            ret: -1,
            errno: crate::Errno::ECANCELED.0 as i64,
            ..self
        }
    }

    /// Whether the host's result meets the entry's expectation.
    pub fn met(&self) -> bool {
        self.errno == 0 && (self.expect == BATCH_EXPECT_ANY || self.ret == self.expect)
    }
}

/// `hostfs_unlink`'s flag: remove a directory (Linux's `AT_REMOVEDIR`).
pub const HOSTFS_REMOVEDIR: u64 = 0x200;
/// `hostfs_setattr`'s `valid` bit: set the permission bits to `mode`.
pub const HOSTFS_SET_MODE: u64 = 1;
/// `hostfs_setattr`'s `valid` bit: truncate or extend to `size`.
pub const HOSTFS_SET_SIZE: u64 = 2;
/// `hostfs_setattr`'s `valid` bit: set the access time to `atime_ns`.
pub const HOSTFS_SET_ATIME: u64 = 4;
/// `hostfs_setattr`'s `valid` bit: set the modification time to `mtime_ns`.
pub const HOSTFS_SET_MTIME: u64 = 8;

/// Most bytes one `hostfs_read` or `hostfs_readdir` moves.
pub const HOSTFS_IO_MAX: u64 = 1 << 20;
/// Most iovecs one `hostfs_readv` takes (a 4 KiB array).
pub const HOSTFS_IOV_MAX: u64 = 256;
/// Longest symbolic link target `hostfs_symlink` takes (Linux's
/// `PATH_MAX` less its NUL).
pub const HOSTFS_TARGET_MAX: u64 = 4095;
/// Most handles the host keeps open for the guest at once (`EMFILE`
/// past it).
pub const HOSTFS_MAX_HANDLES: usize = 4096;
/// Longest name `hostfs_walk` takes (Linux's `NAME_MAX`).
pub const HOSTFS_NAME_MAX: u64 = 255;

/// What `hostfs_getattr` writes: the host file's `stat`, times in
/// nanoseconds since the epoch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostfsStat {
    /// Inode number.
    pub ino: u64,
    /// `st_mode` (type and permission bits).
    pub mode: u64,
    /// Link count.
    pub nlink: u64,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Size in bytes.
    pub size: u64,
    /// The device a device node names.
    pub rdev: u64,
    /// 512-byte blocks held.
    pub blocks: u64,
    /// Last access.
    pub atime_ns: u64,
    /// Last modification.
    pub mtime_ns: u64,
    /// Last status change.
    pub ctime_ns: u64,
}

/// Most iovecs one `vmspace_preadv`/`vmspace_pwritev` takes (a 16 KiB
/// array; 4 MiB of whole pages).
pub const VMSPACE_IOV_MAX: u64 = 1024;

/// Most bytes one `vmspace_copy` moves (a 1 MiB write handed to a reader
/// waiting with a 1 MiB buffer goes in one call). The host holds the
/// bytes in between, so the source is read whole before the destination
/// is written, even where the two share pages.
pub const VMSPACE_COPY_MAX: u64 = 1 << 20;

/// One kernel buffer of `vmspace_preadv`/`vmspace_pwritev`: its
/// guest-physical address and length (the layout of C's `struct iovec`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelIovec {
    /// Guest-physical address, in the guest kernel's RAM.
    pub base: u64,
    /// Bytes.
    pub len: u64,
}

impl Hypercall {
    /// The hypercall for a number, if there is one.
    pub fn from_nr(nr: u16) -> Option<Self> {
        use Hypercall::*;
        Some(match nr {
            0 => Noop,
            1 => ConsoleWrite,
            2 => Exit,
            3 => Clock,
            4 => PoolStats,
            5 => ConsoleRead,
            6 => Idle,
            8 => VmspaceCreate,
            9 => VmspaceDestroy,
            10 => VmspaceCtl,
            11 => VmspaceMmap,
            12 => VmspaceMunmap,
            13 => VmspacePread,
            14 => VmspacePwrite,
            15 => VmspaceMcontrol,
            16 => VmspaceMprotect,
            17 => VmspaceClone,
            18 => VmspacePreadv,
            19 => VmspacePwritev,
            20 => ConsoleWinsize,
            21 => HostfsRoot,
            22 => HostfsWalk,
            23 => HostfsGetattr,
            24 => HostfsReaddir,
            25 => HostfsRead,
            26 => HostfsReadlink,
            27 => HostfsClunk,
            28 => HostfsReadv,
            29 => HostfsCreate,
            30 => HostfsSymlink,
            31 => HostfsLink,
            32 => HostfsUnlink,
            33 => HostfsRename,
            34 => HostfsWritev,
            35 => HostfsSetattr,
            36 => HostfsFsync,
            37 => HostfsChown,
            38 => Batch,
            39 => VmspaceCtlBatch,
            40 => VmspaceCopy,
            _ => return None,
        })
    }

    /// The I/O port that issues this hypercall.
    pub const fn port(self) -> u16 {
        HC_PORT_BASE + self as u16
    }
}

/// The argument block of every hypercall, at a guest-physical address
/// below 4 GiB, 8-byte aligned, wholly inside guest memory.
///
/// `args` are the call's arguments in the order of its C prototype; the
/// host writes `ret` and `errno` (0 on success, else a Linux errno value and
/// `ret == -1`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HypercallBlock {
    /// Arguments, in prototype order; unused ones are ignored.
    pub args: [u64; 7],
    /// Result (`-1` on error).
    pub ret: i64,
    /// 0 or a Linux errno value.
    pub errno: i64,
}

/// `idle` result bit: console input is ready.
pub const IDLE_INPUT: i64 = 1;
/// `idle` result bit: the host terminal's size changed since the last
/// `console_winsize`.
pub const IDLE_WINCH: i64 = 2;

/// `clock` argument: monotonic nanoseconds since the host started.
pub const CLOCK_MONOTONIC: u64 = 0;
/// `clock` argument: wall-clock nanoseconds since the Unix epoch.
pub const CLOCK_REALTIME: u64 = 1;

/// Size in bytes of [`HypercallBlock`] as the host reads it.
pub const HYPERCALL_BLOCK_SIZE: usize = core::mem::size_of::<HypercallBlock>();

/// `vmspace_ctl` command: run the vmspace until it traps or times out.
pub const VMSPACE_CTL_RUN: u64 = 1;

/// The shortest RUN time slice the host arms, in microseconds: a smaller
/// non-zero `timeout_us` is rounded up to it. The slice's timer starts
/// before `KVM_RUN` (entering the process takes tens of µs, and the
/// timer's signal overshoots by 12–20 µs, KVM-NOTES): a timer that fires
/// before the vCPU enters makes `KVM_RUN` return at once, so a shorter
/// slice would hand the process back without it running an instruction,
/// every time. A slice may end up to a quarter early: the host keeps the
/// timer of an earlier RUN that fires within the last quarter of the new
/// slice rather than re-arming it (two timer calls less per system call).
pub const RUN_TIMEOUT_MIN_US: u64 = 200;

/// Boot information the host writes at [`layout::BOOT_INFO_ADDR`] before the
/// guest kernel's first instruction; `rdi` holds its address at entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootInfo {
    /// [`BOOT_INFO_MAGIC`].
    pub magic: u64,
    /// Guest-physical memory size in bytes (`[0, mem_bytes)` is RAM).
    pub mem_bytes: u64,
    /// Guest-physical address of the cpio "newc" image (0 if none).
    pub image_addr: u64,
    /// Image length in bytes.
    pub image_len: u64,
    /// Guest-physical address of the kernel command line (not NUL-terminated).
    pub cmdline_addr: u64,
    /// Command line length in bytes.
    pub cmdline_len: u64,
    /// First guest-physical address past the kernel image, the boot info and
    /// the cpio image: the guest kernel may use `[free_start, mem_bytes)`.
    pub free_start: u64,
    /// Host pool size in bytes (vmspace memory budget).
    pub pool_bytes: u64,
    /// What the host's stdin, stdout and stderr are: byte `i` is a
    /// [`console_kind`] for fd `i`, so the guest's fds 0-2 report the same
    /// (a pipe, a file, a terminal) as natively.
    pub console_kinds: u64,
}

/// [`BootInfo::console_kinds`] values.
pub mod console_kind {
    /// Not said (a terminal, as before the field existed).
    pub const UNKNOWN: u8 = 0;
    /// A terminal.
    pub const TTY: u8 = 1;
    /// A pipe (or fifo).
    pub const PIPE: u8 = 2;
    /// A regular file.
    pub const FILE: u8 = 3;
    /// A character device that is not a terminal (`/dev/null`).
    pub const CHAR_DEVICE: u8 = 4;
    /// A socket.
    pub const SOCKET: u8 = 5;
}

/// `BootInfo::magic`: "VKBOOT01".
pub const BOOT_INFO_MAGIC: u64 = u64::from_le_bytes(*b"VKBOOT01");

/// Segment selectors of the host-built GDT (same in every address space).
pub mod selector {
    /// Ring-0 64-bit code (trap stubs only).
    pub const KERNEL_CS: u16 = 0x08;
    /// Ring-0 data.
    pub const KERNEL_SS: u16 = 0x10;
    /// Ring-3 data (guest kernel and processes), RPL 3.
    pub const USER_SS: u16 = 0x18 | 3;
    /// Ring-3 64-bit code (guest kernel and processes), RPL 3.
    pub const USER_CS: u16 = 0x20 | 3;
    /// TSS used while the guest kernel runs (hypercall ports open).
    pub const TSS_KERNEL: u16 = 0x28;
    /// TSS used while a process runs (only the syscall port open).
    pub const TSS_PROCESS: u16 = 0x38;
}

/// RFLAGS bits the frame checks name.
pub mod rflags {
    /// Carry.
    pub const CF: u64 = 1 << 0;
    /// Always-one bit.
    pub const FIXED: u64 = 1 << 1;
    /// Trap flag (single step).
    pub const TF: u64 = 1 << 8;
    /// Interrupt enable.
    pub const IF: u64 = 1 << 9;
    /// Direction.
    pub const DF: u64 = 1 << 10;
    /// I/O privilege level (two bits).
    pub const IOPL: u64 = 3 << 12;
    /// Nested task.
    pub const NT: u64 = 1 << 14;
    /// Resume.
    pub const RF: u64 = 1 << 16;
    /// Virtual-8086 mode.
    pub const VM: u64 = 1 << 17;
    /// Alignment check.
    pub const AC: u64 = 1 << 18;
    /// Virtual interrupt flag.
    pub const VIF: u64 = 1 << 19;
    /// Virtual interrupt pending.
    pub const VIP: u64 = 1 << 20;
    /// CPUID available.
    pub const ID: u64 = 1 << 21;
    /// The flags a process may change (DragonFly's PSL_USERCHANGE): the
    /// arithmetic flags, TF, DF, AC and ID. IF is forced on, IOPL/NT/VM/VIF/VIP
    /// are refused.
    pub const USER_CHANGEABLE: u64 = 0x8d5 | TF | DF | AC | ID | RF;
}
