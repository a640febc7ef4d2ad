//! Reports of a guest kernel that crashed or broke the hypercall protocol:
//! what happened, where, and every general register, on stderr.

use std::fmt::Write;

use kvm_bindings::{kvm_regs, kvm_sregs};
use vkernel_abi::frame::vector_has_error_code;
use vkernel_abi::layout;

/// The guest kernel took an exception: it has no one to deliver it to, so
/// the run ends with this report.
#[derive(Debug, Clone)]
pub struct KernelCrash {
    /// The exception vector.
    pub vector: u8,
    /// The error code the CPU pushed (0 for vectors without one).
    pub err: u64,
    /// The interrupted context: registers from the hardware frame, segment
    /// selectors as they were before the trap.
    pub regs: kvm_regs,
    /// System registers (cr2 holds the fault address of a #PF).
    pub sregs: kvm_sregs,
}

impl KernelCrash {
    /// The report's first lines: what, where, and for a page fault why.
    pub fn describe(&self) -> String {
        let (vector, rip) = (self.vector, self.regs.rip);
        let mut what = format!(
            "guest kernel crashed: {} (vector {vector}) at rip {rip:#x}",
            vector_name(vector),
        );
        if vector_has_error_code(vector) {
            let _ = write!(what, ", error code {:#x}", self.err);
            if vector == 14 {
                let _ = write!(
                    what,
                    "\n  fault address (cr2) {:#x}: {}",
                    self.sregs.cr2,
                    page_fault_reason(self.err)
                );
            }
        }
        if rip >= layout::TRAP_AREA_BASE {
            what.push_str("\n  (the fault is inside the trap area)");
        }
        what
    }
}

/// Prints `what` and the registers on stderr: the report of a run the host
/// stopped.
pub fn report(what: &str, regs: &kvm_regs, sregs: &kvm_sregs) {
    crate::report!("vkernel: {what}");
    crate::report_raw!("{}", format_registers(regs, sregs));
}

/// Exception names by vector.
pub fn vector_name(vector: u8) -> &'static str {
    match vector {
        0 => "divide error (#DE)",
        1 => "debug (#DB)",
        2 => "NMI",
        3 => "breakpoint (#BP)",
        4 => "overflow (#OF)",
        5 => "bound range (#BR)",
        6 => "invalid opcode (#UD)",
        7 => "device not available (#NM)",
        8 => "double fault (#DF)",
        10 => "invalid TSS (#TS)",
        11 => "segment not present (#NP)",
        12 => "stack fault (#SS)",
        13 => "general protection (#GP)",
        14 => "page fault (#PF)",
        16 => "x87 floating point (#MF)",
        17 => "alignment check (#AC)",
        18 => "machine check (#MC)",
        19 => "SIMD floating point (#XM)",
        _ => "reserved exception",
    }
}

/// Decodes a page-fault error code.
pub fn page_fault_reason(err: u64) -> String {
    let who = if err & 4 != 0 { "user" } else { "supervisor" };
    let what = if err & 16 != 0 {
        "instruction fetch"
    } else if err & 2 != 0 {
        "write"
    } else {
        "read"
    };
    let why = if err & 1 != 0 {
        "protection violation"
    } else {
        "page not present"
    };
    format!("{who} {what}, {why}")
}

/// The general registers, four a line.
pub fn format_registers(regs: &kvm_regs, sregs: &kvm_sregs) -> String {
    let r = [
        ("rax", regs.rax),
        ("rbx", regs.rbx),
        ("rcx", regs.rcx),
        ("rdx", regs.rdx),
        ("rsi", regs.rsi),
        ("rdi", regs.rdi),
        ("rbp", regs.rbp),
        ("rsp", regs.rsp),
        ("r8", regs.r8),
        ("r9", regs.r9),
        ("r10", regs.r10),
        ("r11", regs.r11),
        ("r12", regs.r12),
        ("r13", regs.r13),
        ("r14", regs.r14),
        ("r15", regs.r15),
        ("rip", regs.rip),
        ("rflags", regs.rflags),
        ("cr2", sregs.cr2),
        ("cr3", sregs.cr3),
    ];
    let mut s = String::new();
    for (i, (name, v)) in r.iter().enumerate() {
        let _ = write!(s, "  {name:>6} {v:#018x}");
        if i % 4 == 3 {
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        "      cs {:#06x}     ss {:#06x}   fs.base {:#x}   gs.base {:#x}",
        sregs.cs.selector, sregs.ss.selector, sregs.fs.base, sregs.gs.base
    );
    s
}
