//! The guest-physical and virtual layout both sides rely on.

/// Page size.
pub const PAGE_SIZE: u64 = 4096;

/// Lowest address a vmspace may map (page 0 stays unmapped, as a null
/// guard; the seed's `VM_MIN_USER_ADDRESS > 0` checks therefore apply).
pub const VM_MIN_USER_ADDRESS: u64 = 0x1000;
/// One past the highest address a vmspace may map. PML4 slot 255 (the top
/// 512 GiB of the lower half) is the trap area's, in every address space.
pub const VM_MAX_USER_ADDRESS: u64 = 0x7f80_0000_0000;

/// Virtual base of the trap area (GDT, IDT, TSSs, trap stack, ring-0
/// exception stubs, the user `syscall` stub), mapped at this address in the
/// guest kernel's address space and in every vmspace.
pub const TRAP_AREA_BASE: u64 = VM_MAX_USER_ADDRESS;
/// Address of the user-executable `syscall` stub page (LSTAR points here).
pub const SYSCALL_STUB_ADDR: u64 = TRAP_AREA_BASE;

/// Guest-physical (= guest-kernel virtual) address of [`crate::BootInfo`].
pub const BOOT_INFO_ADDR: u64 = 0x1000;
/// Where the command line is placed (one page after the boot info).
pub const CMDLINE_ADDR: u64 = 0x2000;
/// Longest command line the host passes.
pub const CMDLINE_MAX: u64 = 4096;
/// Guest-physical address of the clock page ([`crate::clock::ClockPage`]),
/// which the host refreshes and the guest (kernel and, read-only,
/// processes) reads.
pub const CLOCK_PAGE_ADDR: u64 = 0x3000;
/// Lowest address the kernel ELF may load at.
pub const KERNEL_MIN_ADDR: u64 = 0x10_0000;

/// Guest-physical base of the host pool (the vmspace core's memory): the
/// guest kernel has no mapping of it.
pub const POOL_BASE: u64 = 1 << 32;
/// Hypercall blocks must lie below this guest-physical address.
pub const HYPERCALL_BLOCK_LIMIT: u64 = 1 << 32;
