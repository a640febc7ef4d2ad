//! Small position-independent user programs, assembled into the kernel
//! image and copied into a vmspace with pwrite. The test suite runs them to
//! see each trap path; each routine ends in a `syscall` (or traps itself).

use guestlib::vmspace::{self as vms, VmResult};
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::mman::*;
use vkernel_abi::paging::pte;
use vkernel_abi::{
    rflags, selector, Call, Errno, Hypercall, HypercallBlock, TrapFrame, VextFrame, HC_PORT_BASE,
    VMSPACE_CTL_RUN,
};

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
    // I/O the process's bitmap allows only as the stub's one-byte `out`
    // to the syscall port (0x60): every other use is the process's fault.
    ".global u_in",
    "u_in:",
    "    mov dx, 0x60",
    "    in al, dx",
    "    ud2",
    ".global u_in_imm",
    "u_in_imm:",
    "    in eax, 0x60",
    "    ud2",
    // rdi = where the bytes go
    ".global u_insb",
    "u_insb:",
    "    mov dx, 0x60",
    "    insb",
    "    ud2",
    // rdi = where, rsi = count
    ".global u_rep_insb",
    "u_rep_insb:",
    "    mov dx, 0x60",
    "    mov rcx, rsi",
    "    rep insb",
    "    ud2",
    // rsi = from where
    ".global u_outsb",
    "u_outsb:",
    "    mov dx, 0x60",
    "    outsb",
    "    ud2",
    ".global u_out_word",
    "u_out_word:",
    "    mov dx, 0x60",
    "    out dx, ax",
    "    ud2",
    // the stub's own instruction, from the process's code
    ".global u_out_syscall_port",
    "u_out_syscall_port:",
    "    out 0x60, al",
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
    In,
    InImm,
    Insb,
    RepInsb,
    Outsb,
    OutWord,
    OutSyscallPort,
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
        Routine::In => sym_addr!(u_in),
        Routine::InImm => sym_addr!(u_in_imm),
        Routine::Insb => sym_addr!(u_insb),
        Routine::RepInsb => sym_addr!(u_rep_insb),
        Routine::Outsb => sym_addr!(u_outsb),
        Routine::OutWord => sym_addr!(u_out_word),
        Routine::OutSyscallPort => sym_addr!(u_out_syscall_port),
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

// `vmspace_ctl` with a known resume address: the host puts the kernel back
// at `hc_probe_resume` (just past the `out`). A process that places its
// own I/O instruction at that same address in its vmspace must not have
// KVM finish it in the kernel's context: that would overwrite AL, skip
// the `cmc` (CF stays clear) or store through the kernel's tables.
// rdi = port, rsi = block address; returns eax as the `out` left it, with
// bit 32 set when the `cmc` ran.
core::arch::global_asm!(
    ".section .text.hc_probe, \"ax\"",
    ".global hc_probe_ctl",
    "hc_probe_ctl:",
    "    mov edx, edi",
    "    mov eax, esi",
    "    clc",
    "    out dx, eax",
    ".global hc_probe_resume",
    "hc_probe_resume:",
    "    cmc",
    "    setc cl",
    "    movzx ecx, cl",
    "    shl rcx, 32",
    "    or rax, rcx",
    "    ret",
);

extern "sysv64" {
    fn hc_probe_ctl(port: u64, block: u64) -> u64;
}

/// Where the kernel resumes after [`probe_ctl`]'s `out`.
pub fn probe_resume() -> u64 {
    sym_addr!(hc_probe_resume)
}

/// `vmspace_ctl(RUN)` through [`hc_probe_ctl`]: the host's result and what
/// the probe saw of its own registers (`Some` when they were intact).
pub fn probe_ctl(id: u64, tf: &mut TrapFrame, vf: &mut VextFrame) -> (VmResult, bool) {
    let mut block = Call::VmspaceCtl {
        id,
        cmd: VMSPACE_CTL_RUN,
        tframe: tf as *mut TrapFrame as u64,
        vframe: vf as *mut VextFrame as u64,
        timeout_us: 1_000_000,
    }
    .encode();
    let at = &mut block as *mut HypercallBlock as u64;
    let port = HC_PORT_BASE + Hypercall::VmspaceCtl as u16;
    // SAFETY: the probe is an `out` to a hypercall port with the block's
    // address (identity-mapped, on this stack) and plain register
    // arithmetic; the host writes only the block and the two frames.
    let seen = unsafe { hc_probe_ctl(port as u64, at) };
    // SAFETY: the host wrote the block's result; read it as written.
    let done = unsafe { core::ptr::read_volatile(at as *const HypercallBlock) };
    let r = if done.errno != 0 {
        Err(Errno(done.errno as i32))
    } else {
        Ok(done.ret)
    };
    (r, seen == (at & 0xffff_ffff) | 1 << 32)
}
