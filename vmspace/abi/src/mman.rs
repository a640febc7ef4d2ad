//! `PROT_`, `MAP_` and `MADV_` values for `vmspace_mmap`, `vmspace_mprotect`
//! and `vmspace_mcontrol` (Linux's numbers, DragonFly's extensions).

/// Pages may be read.
pub const PROT_READ: u64 = 0x1;
/// Pages may be written.
pub const PROT_WRITE: u64 = 0x2;
/// Pages may be executed.
pub const PROT_EXEC: u64 = 0x4;
/// No access.
pub const PROT_NONE: u64 = 0x0;
/// All valid protection bits.
pub const PROT_MASK: u64 = PROT_READ | PROT_WRITE | PROT_EXEC;

/// Share changes (with the guest kernel's physical memory for [`PHYSMEM_FD`]).
pub const MAP_SHARED: u64 = 0x01;
/// Changes are private (copy on first write).
pub const MAP_PRIVATE: u64 = 0x02;
/// Place the mapping exactly at `addr`, replacing what is there.
pub const MAP_FIXED: u64 = 0x10;
/// Anonymous, zero-filled memory; `fd` must be -1.
pub const MAP_ANON: u64 = 0x20;
/// DragonFly: the mapping's translations come from guest page tables.
pub const MAP_VPAGETABLE: u64 = 0x2000;
/// Map every page now (Linux's value): anonymous and private pages are
/// brought in, physical-memory pages mapped, so the first touch of each
/// costs no fault (not with [`MAP_VPAGETABLE`]).
pub const MAP_POPULATE: u64 = 0x8000;
/// Anonymous memory used as a stack (Linux's value): a fault maps its
/// page and only [`STACK_FAULT_AROUND`] pages' worth around it, not the
/// usual window. A thread's stack (glibc maps 8 MiB with `MAP_STACK`) is
/// touched only near its top; Linux 6.7 likewise gives `MAP_STACK`
/// mappings no transparent huge pages.
pub const MAP_STACK: u64 = 0x2_0000;
/// The fault-around window (pages, aligned) of a [`MAP_STACK`] mapping.
pub const STACK_FAULT_AROUND: u64 = 4;
/// How far below a [`MAP_STACK`] mapping's last window (pages) a fault
/// still continues a stack growing down, whose window then doubles (a
/// frame may skip pages).
pub const STACK_GROWTH_GAP: u64 = 16;
/// All flags `vmspace_mmap` accepts.
pub const MAP_KNOWN: u64 =
    MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANON | MAP_VPAGETABLE | MAP_POPULATE | MAP_STACK;

/// The reserved fd naming the guest kernel's own physical memory: `offset`
/// is a guest-physical address, so a mapping shares the kernel's pages.
pub const PHYSMEM_FD: u64 = 0x7fff_fffe;
/// `fd` for anonymous mappings (-1 as a 64-bit value).
pub const FD_NONE: u64 = u64::MAX;

/// No special treatment.
pub const MADV_NORMAL: u64 = 0;
/// Expect random access.
pub const MADV_RANDOM: u64 = 1;
/// Expect sequential access.
pub const MADV_SEQUENTIAL: u64 = 2;
/// Prefault the range now.
pub const MADV_WILLNEED: u64 = 3;
/// Discard the range's pages (anonymous memory reads as zero again).
pub const MADV_DONTNEED: u64 = 4;
/// Same as DONTNEED here.
pub const MADV_FREE: u64 = 5;
/// DragonFly: no-op here.
pub const MADV_NOSYNC: u64 = 6;
/// DragonFly: no-op here.
pub const MADV_AUTOSYNC: u64 = 7;
/// DragonFly: no-op here.
pub const MADV_NOCORE: u64 = 8;
/// DragonFly: no-op here.
pub const MADV_CORE: u64 = 9;
/// DragonFly: drop every cached translation for the range.
pub const MADV_INVAL: u64 = 10;
/// DragonFly: set the root page table of a VPAGETABLE mapping.
pub const MADV_SETMAP: u64 = 11;
/// Highest valid `behav` for `vmspace_mcontrol`.
pub const MADV_CONTROL_END: u64 = MADV_SETMAP;
