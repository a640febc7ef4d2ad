//! The trap area: a few host-owned pages mapped at `TRAP_AREA_BASE` in
//! every address space (the guest kernel's and each vmspace's).
//!
//! Ring 0 holds nothing but one-instruction stubs here. On these machines
//! guest ring 0 is run by KVM's instruction emulator (KVM-NOTES), so the
//! guest kernel and its processes run in ring 3 and every exception goes
//! through an IDT gate to a stub that is a single `out` to the host.
//!
//! | page | contents                                  | mapping          |
//! |------|-------------------------------------------|------------------|
//! | 0    | `syscall` stub (LSTAR): `out SYSCALL_PORT` | user, read+exec  |
//! | 1    | GDT                                       | supervisor, RW   |
//! | 2    | IDT                                       | supervisor, RW   |
//! | 3-5  | kernel TSS + I/O bitmap (hypercall ports) | supervisor, RW   |
//! | 6-8  | process TSS + I/O bitmap (syscall port)   | supervisor, RW   |
//! | 9    | exception stubs: `out TRAP_PORT_BASE+v`   | supervisor, exec |
//! | 10-11| trap stack (TSS.RSP0 = its top)           | supervisor, RW   |

use vkernel_abi::{
    frame, layout, selector, HC_PORT_BASE, HC_PORT_COUNT, SYSCALL_PORT, TRAP_PORT_BASE,
};

/// Number of pages in the trap area.
pub const PAGES: u64 = 12;
const PAGE: u64 = layout::PAGE_SIZE;

/// Page index of each part.
const SYSCALL_STUB_PAGE: u64 = 0;
const GDT_PAGE: u64 = 1;
const IDT_PAGE: u64 = 2;
const TSS_KERNEL_PAGE: u64 = 3;
const TSS_PROCESS_PAGE: u64 = 6;
const STUBS_PAGE: u64 = 9;
const STACK_TOP_PAGE: u64 = 12;

/// Length of the `out imm8, al` that starts each stub.
pub const STUB_OUT_LEN: u64 = 2;
/// Bytes per exception stub (`out imm8, al; ud2`, padded).
const STUB_BYTES: u64 = 8;
/// Exception vectors with a stub (the architectural ones).
pub const VECTORS: u8 = 32;

/// Virtual address of trap-area page `i`.
const fn va(page: u64) -> u64 {
    layout::TRAP_AREA_BASE + page * PAGE
}

/// GDT base (virtual).
pub const GDT_BASE: u64 = va(GDT_PAGE);
/// GDT limit: null, kcode, kdata, udata, ucode, two 16-byte TSS descriptors.
pub const GDT_LIMIT: u16 = 0x48 - 1;
/// IDT base (virtual).
pub const IDT_BASE: u64 = va(IDT_PAGE);
/// IDT limit (256 gates).
pub const IDT_LIMIT: u16 = 256 * 16 - 1;
/// Kernel TSS base (virtual).
pub const TSS_KERNEL_BASE: u64 = va(TSS_KERNEL_PAGE);
/// Process TSS base (virtual).
pub const TSS_PROCESS_BASE: u64 = va(TSS_PROCESS_PAGE);
/// TSS limit: 104-byte TSS, 8 KiB I/O bitmap, the closing 0xff byte.
pub const TSS_LIMIT: u32 = 104 + 8192;
/// Top of the trap stack (TSS.RSP0): the CPU pushes the exception frame
/// just below it.
pub const TRAP_STACK_TOP: u64 = va(STACK_TOP_PAGE);

/// Virtual address of the stub for exception `vector`.
pub const fn stub_addr(vector: u8) -> u64 {
    va(STUBS_PAGE) + vector as u64 * STUB_BYTES
}

/// How a trap-area page is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Ring 3 may read and execute it (the syscall stub).
    UserExec,
    /// Supervisor-only, writable by the CPU (descriptor tables, TSS, stack).
    SupervisorData,
    /// Supervisor-only code (exception stubs).
    SupervisorExec,
}

/// The contents and mapping of every trap-area page, built once per VM.
pub struct TrapAreaImage {
    /// `(page index, contents, access)`; contents are a whole page.
    pub pages: Vec<(u64, Vec<u8>, Access)>,
}

/// Builds the trap area's pages.
pub fn build() -> TrapAreaImage {
    let mut pages = Vec::new();

    // Page 0: LSTAR lands here. `out SYSCALL_PORT, al` exits to the host on
    // PVM (where `syscall` stays at CPL 3, so the process's I/O bitmap must
    // open the port) and on hardware KVM (CPL 0) alike. ud2 after it: the
    // host never resumes past the out.
    let mut stub = vec![0xcc_u8; PAGE as usize];
    stub[..4].copy_from_slice(&[0xe6, SYSCALL_PORT as u8, 0x0f, 0x0b]);
    pages.push((SYSCALL_STUB_PAGE, stub, Access::UserExec));

    pages.push((GDT_PAGE, gdt(), Access::SupervisorData));
    pages.push((IDT_PAGE, idt(), Access::SupervisorData));

    // A 4-byte `out dx, eax` needs the bits of all four ports it touches,
    // so the last hypercall port needs three more open behind it (the host
    // treats those as "not a hypercall port").
    let kernel_ports = HC_PORT_BASE..HC_PORT_BASE + HC_PORT_COUNT + 3;
    for (i, chunk) in tss(kernel_ports).chunks(PAGE as usize).enumerate() {
        pages.push((
            TSS_KERNEL_PAGE + i as u64,
            chunk.to_vec(),
            Access::SupervisorData,
        ));
    }
    for (i, chunk) in tss(SYSCALL_PORT..SYSCALL_PORT + 1)
        .chunks(PAGE as usize)
        .enumerate()
    {
        pages.push((
            TSS_PROCESS_PAGE + i as u64,
            chunk.to_vec(),
            Access::SupervisorData,
        ));
    }

    let mut stubs = vec![0xcc_u8; PAGE as usize];
    for v in 0..VECTORS {
        let at = (v as u64 * STUB_BYTES) as usize;
        stubs[at..at + 4].copy_from_slice(&[0xe6, (TRAP_PORT_BASE + v as u16) as u8, 0x0f, 0x0b]);
    }
    pages.push((STUBS_PAGE, stubs, Access::SupervisorExec));
    pages.push((10, vec![0; PAGE as usize], Access::SupervisorData));
    pages.push((11, vec![0; PAGE as usize], Access::SupervisorData));
    TrapAreaImage { pages }
}

fn gdt() -> Vec<u8> {
    let mut g = vec![0u8; PAGE as usize];
    let entries: [(u16, u64); 4] = [
        (selector::KERNEL_CS, 0x00af_9a00_0000_ffff),
        (selector::KERNEL_SS, 0x00cf_9200_0000_ffff),
        (selector::USER_SS & !3, 0x00cf_f200_0000_ffff),
        (selector::USER_CS & !3, 0x00af_fa00_0000_ffff),
    ];
    for (sel, desc) in entries {
        g[sel as usize..sel as usize + 8].copy_from_slice(&desc.to_le_bytes());
    }
    for (sel, base) in [
        (selector::TSS_KERNEL, TSS_KERNEL_BASE),
        (selector::TSS_PROCESS, TSS_PROCESS_BASE),
    ] {
        g[sel as usize..sel as usize + 16].copy_from_slice(&tss_descriptor(base, TSS_LIMIT));
    }
    g
}

/// A 64-bit available-TSS descriptor (16 bytes).
fn tss_descriptor(base: u64, limit: u32) -> [u8; 16] {
    let lo: u64 = (limit as u64 & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40) // present, DPL 0, type 9: available 64-bit TSS
        | (((limit as u64 >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    let hi: u64 = base >> 32;
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&lo.to_le_bytes());
    d[8..].copy_from_slice(&hi.to_le_bytes());
    d
}

fn idt() -> Vec<u8> {
    let mut t = vec![0u8; PAGE as usize];
    for v in 0..VECTORS {
        // int3/into must be reachable from ring 3 (DPL 3); every other gate
        // is DPL 0 so `int n` from ring 3 is a #GP, not a fake exception.
        let dpl: u64 = if v == 3 || v == 4 { 3 } else { 0 };
        let off = stub_addr(v);
        let lo: u64 = (off & 0xffff)
            | ((selector::KERNEL_CS as u64) << 16)
            | ((0x8e | (dpl << 5)) << 40) // present, 64-bit interrupt gate
            | (((off >> 16) & 0xffff) << 48);
        let hi = off >> 32;
        let at = v as usize * 16;
        t[at..at + 8].copy_from_slice(&lo.to_le_bytes());
        t[at + 8..at + 16].copy_from_slice(&hi.to_le_bytes());
    }
    t
}

/// A TSS (RSP0 = the trap stack) followed by an I/O bitmap opening `ports`.
fn tss(ports: std::ops::Range<u16>) -> Vec<u8> {
    let mut t = vec![0u8; 3 * PAGE as usize];
    t[4..12].copy_from_slice(&TRAP_STACK_TOP.to_le_bytes()); // rsp0
    t[102..104].copy_from_slice(&104u16.to_le_bytes()); // iomap base
    let bitmap = &mut t[104..104 + 8192 + 1];
    bitmap.fill(0xff); // every port closed, plus the closing 0xff byte
    for p in ports {
        bitmap[p as usize / 8] &= !(1 << (p % 8));
    }
    t
}

/// Where the CPU left the exception frame for `vector` on the trap stack:
/// `(frame address, has error code)`. The frame is RIP, CS, RFLAGS, RSP,
/// SS, preceded by the error code where the vector pushes one.
pub fn exception_frame_addr(vector: u8) -> u64 {
    let words = if frame::vector_has_error_code(vector) {
        6
    } else {
        5
    };
    TRAP_STACK_TOP - words * 8
}
