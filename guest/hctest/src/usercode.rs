//! Small position-independent user programs, assembled into the kernel
//! image and copied into a vmspace with pwrite. The test suite runs them to
//! see each trap path; each routine ends in a `syscall` (or traps itself).

use guestlib::vmspace as vms;
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::mman::*;
use vkernel_abi::paging::pte;
use vkernel_abi::{rflags, selector, Errno, TrapFrame};

core::arch::global_asm!(
    ".section .rodata.usercode, \"a\"",
    ".balign 16",
    ".global usercode_start",
    "usercode_start:",
    // rax = rdi; syscall
    ".global u_syscall",
    "u_syscall:",
    "    mov rax, rdi",
    "    syscall",
    "    ud2",
    // *(u64 *)rdi = rsi; rax = *(u64 *)rdi; syscall
    ".global u_store_load",
    "u_store_load:",
    "    mov [rdi], rsi",
    "    mov rax, [rdi]",
    "    syscall",
    "    ud2",
    // rax = *(u64 *)rdi; syscall
    ".global u_load",
    "u_load:",
    "    mov rax, [rdi]",
    "    syscall",
    "    ud2",
    // touch rsi pages from rdi, one store each, then syscall
    ".global u_touch_pages",
    "u_touch_pages:",
    "1:  mov byte ptr [rdi], 1",
    "    add rdi, 4096",
    "    dec rsi",
    "    jnz 1b",
    "    syscall",
    "    ud2",
    // syscall forever: each RUN returns at the syscall, the next resumes
    ".global u_syscall_loop",
    "u_syscall_loop:",
    "    syscall",
    "    jmp u_syscall_loop",
    // spin forever: only the RUN timeout gets the kernel back
    ".global u_spin",
    "u_spin:",
    "    inc rax",
    "    jmp u_spin",
    ".global u_hlt",
    "u_hlt:",
    "    hlt",
    ".global u_out",
    "u_out:",
    "    out 0x80, al",
    ".global u_out_hypercall",
    "u_out_hypercall:",
    "    mov dx, 0x500",
    "    out dx, eax",
    ".global u_mov_cr3",
    "u_mov_cr3:",
    "    mov cr3, rax",
    ".global u_lgdt",
    "u_lgdt:",
    "    lgdt [rsp]",
    ".global u_wrmsr",
    "u_wrmsr:",
    "    wrmsr",
    ".global u_cli",
    "u_cli:",
    "    cli",
    ".global u_int3",
    "u_int3:",
    "    int3",
    ".global u_ud2",
    "u_ud2:",
    "    ud2",
    ".global u_div0",
    "u_div0:",
    "    xor edx, edx",
    "    xor ecx, ecx",
    "    div ecx",
    // call the syscall stub directly: still only a system call
    ".global u_call_stub",
    "u_call_stub:",
    "    mov rax, rdi",
    "    jmp rsi",
    // xmm0 = rdi; syscall; rax = xmm0; syscall
    ".global u_simd",
    "u_simd:",
    "    movq xmm0, rdi",
    "    syscall",
    "    movq rax, xmm0",
    "    syscall",
    "    ud2",
    // rax = xmm0 (whatever the vCPU holds); syscall
    ".global u_simd_read",
    "u_simd_read:",
    "    movq rax, xmm0",
    "    syscall",
    "    ud2",
    // rax = fs:[0]; syscall
    ".global u_fs_load",
    "u_fs_load:",
    "    mov rax, fs:[0]",
    "    syscall",
    "    ud2",
    ".global usercode_end",
    "usercode_end:",
);

/// Where test programs live inside a vmspace.
pub const TEXT: u64 = 0x40_0000;
pub const DATA: u64 = 0x60_0000;
pub const STACK_TOP: u64 = 0x80_0000;
pub const STACK_PAGES: u64 = 4;
pub const PAGE: u64 = PAGE_SIZE;

/// A ring-3 frame that starts `routine` with `rdi`, `rsi`.
pub fn frame(routine: Routine, rdi: u64, rsi: u64) -> TrapFrame {
    TrapFrame {
        rip: TEXT + offset(routine),
        rsp: STACK_TOP - 64,
        cs: selector::USER_CS as u64,
        ss: selector::USER_SS as u64,
        rflags: rflags::IF | rflags::FIXED,
        rdi,
        rsi,
        ..Default::default()
    }
}

/// Creates vmspace `id` with the user routines at TEXT (read+exec), a
/// data page window at DATA (read+write, demand-zero) and a stack.
pub fn new_process(id: u64) -> Result<(), Errno> {
    vms::create(id, 0, 0)?;
    let blob = blob();
    let text_len = (blob.len() as u64).div_ceil(PAGE) * PAGE;
    vms::mmap(
        id,
        TEXT,
        text_len,
        PROT_READ | PROT_WRITE,
        MAP_ANON | MAP_PRIVATE | MAP_FIXED,
        FD_NONE,
        0,
    )?;
    if vms::pwrite(id, blob, TEXT)? != blob.len() as i64 {
        return Err(Errno::EIO);
    }
    vms::mprotect(id, TEXT, text_len, PROT_READ | PROT_EXEC)?;
    vms::mmap(
        id,
        DATA,
        16 * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_ANON | MAP_PRIVATE | MAP_FIXED,
        FD_NONE,
        0,
    )?;
    let stack = STACK_TOP - STACK_PAGES * PAGE;
    vms::mmap(
        id,
        stack,
        STACK_PAGES * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_ANON | MAP_PRIVATE | MAP_FIXED,
        FD_NONE,
        0,
    )?;
    Ok(())
}

extern "C" {
    static usercode_start: u8;
    static usercode_end: u8;
}

/// The routines, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routine {
    Syscall,
    StoreLoad,
    Load,
    TouchPages,
    Spin,
    SyscallLoop,
    Hlt,
    Out,
    OutHypercall,
    MovCr3,
    Lgdt,
    Wrmsr,
    Cli,
    Int3,
    Ud2,
    Div0,
    CallStub,
    Simd,
    SimdRead,
    FsLoad,
}

macro_rules! sym_addr {
    ($name:ident) => {{
        extern "C" {
            static $name: u8;
        }
        core::ptr::addr_of!($name) as u64
    }};
}

/// All routines as one blob, to be copied to a vmspace.
pub fn blob() -> &'static [u8] {
    let start = core::ptr::addr_of!(usercode_start);
    let end = core::ptr::addr_of!(usercode_end);
    // SAFETY: the two labels bracket the blob in .rodata, which is never written.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// Offset of a routine inside the blob.
pub fn offset(r: Routine) -> u64 {
    let start = blob().as_ptr() as u64;
    let addr = match r {
        Routine::Syscall => sym_addr!(u_syscall),
        Routine::StoreLoad => sym_addr!(u_store_load),
        Routine::Load => sym_addr!(u_load),
        Routine::TouchPages => sym_addr!(u_touch_pages),
        Routine::Spin => sym_addr!(u_spin),
        Routine::SyscallLoop => sym_addr!(u_syscall_loop),
        Routine::Hlt => sym_addr!(u_hlt),
        Routine::Out => sym_addr!(u_out),
        Routine::OutHypercall => sym_addr!(u_out_hypercall),
        Routine::MovCr3 => sym_addr!(u_mov_cr3),
        Routine::Lgdt => sym_addr!(u_lgdt),
        Routine::Wrmsr => sym_addr!(u_wrmsr),
        Routine::Cli => sym_addr!(u_cli),
        Routine::Int3 => sym_addr!(u_int3),
        Routine::Ud2 => sym_addr!(u_ud2),
        Routine::Div0 => sym_addr!(u_div0),
        Routine::CallStub => sym_addr!(u_call_stub),
        Routine::Simd => sym_addr!(u_simd),
        Routine::SimdRead => sym_addr!(u_simd_read),
        Routine::FsLoad => sym_addr!(u_fs_load),
    };
    addr - start
}

/// Where the `MAP_VPAGETABLE` cases and benchmark put their window in a
/// vmspace: PML4 slot 0, PDPT slot 1, PD slot 0, so one guest PT covers it.
pub const VPT_BASE: u64 = 0x4000_0000;
/// Pages in that window (one guest PT).
pub const VPT_PAGES: u64 = 512;

/// One page of [`GuestTables`].
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct TablePage([u64; 512]);

/// PML4, PDPT, PD, PT, then two data pages (A and B). The kernel runs
/// identity-mapped, so their addresses are their guest-physical addresses.
/// The host reads these tables (and sets A/D bits in them) while a process
/// runs; the kernel touches them only with volatile accesses between runs.
static mut GUEST_TABLE_PAGES: [TablePage; 6] = [TablePage([0; 512]); 6];

/// A little 4-level page table in the kernel's own RAM, for a process's
/// `MAP_VPAGETABLE` window at [`VPT_BASE`], as a guest pmap keeps one.
pub struct GuestTables;

impl GuestTables {
    /// Guest-physical address of page `i` (0 = PML4 .. 3 = PT, 4 = A, 5 = B).
    pub fn page(i: usize) -> u64 {
        assert!(i < 6);
        // Only the address is taken: no reference to the static is made.
        let base = core::ptr::addr_of_mut!(GUEST_TABLE_PAGES) as u64;
        base + i as u64 * PAGE
    }

    /// The root (the value for `MADV_SETMAP`).
    pub fn root() -> u64 {
        Self::page(0)
    }

    /// Data page A.
    pub fn data_a() -> u64 {
        Self::page(4)
    }

    /// Data page B.
    pub fn data_b() -> u64 {
        Self::page(5)
    }

    /// Clears every page and links PML4 → PDPT → PD → PT for [`VPT_BASE`]
    /// (user, writable at every level; the PT decides).
    pub fn build() {
        for i in 0..6 {
            for slot in 0..512 {
                poke(Self::page(i) + slot * 8, 0);
            }
        }
        let table = pte::P | pte::RW | pte::US;
        poke(
            Self::page(0) + ((VPT_BASE >> 39) & 511) * 8,
            Self::page(1) | table,
        );
        poke(
            Self::page(1) + ((VPT_BASE >> 30) & 511) * 8,
            Self::page(2) | table,
        );
        poke(
            Self::page(2) + ((VPT_BASE >> 21) & 511) * 8,
            Self::page(3) | table,
        );
    }

    /// Sets PT entry `i` (the page at `VPT_BASE + i * PAGE`).
    pub fn set_pte(i: u64, entry: u64) {
        poke(Self::page(3) + i * 8, entry);
    }

    /// PT entry `i`.
    pub fn pte(i: u64) -> u64 {
        peek(Self::page(3) + i * 8)
    }
}

/// Stores `v` at kernel address `addr` (volatile: the host reads it).
pub fn poke(addr: u64, v: u64) {
    // SAFETY: callers pass addresses of the kernel's own static pages,
    // 8-byte aligned, identity-mapped and writable.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

/// Loads the u64 at kernel address `addr` (volatile: the host writes it).
pub fn peek(addr: u64) -> u64 {
    // SAFETY: as for `poke`.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}
