//! DragonFly's x86-64 `struct trapframe` and `struct vextframe`, kept
//! field for field so DragonFly's vkernel code reads the same, and the
//! trap numbers `vmspace_ctl(RUN)` reports in `TrapFrame::trapno`.

/// The register frame `vmspace_ctl(RUN)` takes in and hands back.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub r8: u64,
    pub r9: u64,
    pub rax: u64,
    pub rbx: u64,
    pub rbp: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    /// In: [`PGEX_FPFAULT`] asks for `T_DNA` on first FPU use (unused here:
    /// FPU state is always switched by the host).
    pub xflags: u64,
    /// Why RUN returned: a `T_*` constant.
    pub trapno: u64,
    /// Fault address (CR2) for `T_PAGEFLT`.
    pub addr: u64,
    /// Frame flags (DragonFly's `tf_flags`); 0.
    pub flags: u64,
    /// Hardware error code; for `T_FAST_SYSCALL` the instruction length (2).
    pub err: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Size of [`TrapFrame`]: 200 bytes, as DragonFly's.
pub const TRAP_FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(TRAP_FRAME_SIZE == 200);

/// One TLS segment (DragonFly's `struct tls_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// Segment base.
    pub base: u64,
    /// Segment size (informational; -1 for "whole address space").
    pub size: i64,
}

/// DragonFly's `struct vextframe`: the TLS bases of the process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VextFrame {
    /// `[0]` = fs base, `[1]` = gs base.
    pub tls: [TlsInfo; 2],
}

/// Size of [`VextFrame`].
pub const VEXT_FRAME_SIZE: usize = core::mem::size_of::<VextFrame>();

/// `TrapFrame::xflags`: ask for `T_DNA` on FPU use.
pub const PGEX_FPFAULT: u64 = 0x80;

/// Interrupted: the RUN timeout expired (time slice over).
pub const T_TIMEOUT: u64 = 0;
/// Invalid opcode (#UD), as DragonFly names it. A privileged instruction in
/// ring 3 is a #GP and so reports `T_PROTFLT`.
pub const T_PRIVINFLT: u64 = 1;
/// Breakpoint (#BP, `int3`).
pub const T_BPTFLT: u64 = 3;
/// Arithmetic trap (x87 #MF).
pub const T_ARITHTRAP: u64 = 6;
/// General protection (#GP).
pub const T_PROTFLT: u64 = 9;
/// Trace trap (#DB).
pub const T_TRCTRAP: u64 = 10;
/// Page fault (#PF); `addr` = CR2, `err` = error code.
pub const T_PAGEFLT: u64 = 12;
/// Alignment check (#AC).
pub const T_ALIGNFLT: u64 = 14;
/// Divide error (#DE).
pub const T_DIVIDE: u64 = 18;
/// NMI.
pub const T_NMI: u64 = 19;
/// Overflow (#OF).
pub const T_OFLOW: u64 = 20;
/// Bound range (#BR).
pub const T_BOUND: u64 = 21;
/// FPU not available (#NM).
pub const T_DNA: u64 = 22;
/// Double fault.
pub const T_DOUBLEFLT: u64 = 23;
/// Invalid TSS.
pub const T_TSSFLT: u64 = 25;
/// Segment not present.
pub const T_SEGNPFLT: u64 = 26;
/// Stack fault.
pub const T_STKFLT: u64 = 27;
/// Machine check.
pub const T_MCHK: u64 = 28;
/// SIMD floating-point exception (#XM).
pub const T_XMMFLT: u64 = 29;
/// The process executed `syscall`: `rax` holds the number, `rip` is past
/// the instruction, `err` = 2 (its length).
pub const T_FAST_SYSCALL: u64 = 0x81;

/// DragonFly trap number for an x86 exception vector.
pub const fn trapno_for_vector(vector: u8) -> u64 {
    match vector {
        0 => T_DIVIDE,
        1 => T_TRCTRAP,
        2 => T_NMI,
        3 => T_BPTFLT,
        4 => T_OFLOW,
        5 => T_BOUND,
        6 => T_PRIVINFLT,
        7 => T_DNA,
        8 => T_DOUBLEFLT,
        10 => T_TSSFLT,
        11 => T_SEGNPFLT,
        12 => T_STKFLT,
        13 => T_PROTFLT,
        14 => T_PAGEFLT,
        16 => T_ARITHTRAP,
        17 => T_ALIGNFLT,
        18 => T_MCHK,
        19 => T_XMMFLT,
        _ => T_PROTFLT,
    }
}

/// Whether the CPU pushes an error code for this exception vector.
pub const fn vector_has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}
