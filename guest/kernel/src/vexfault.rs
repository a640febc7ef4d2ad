//! A #GP that reached the kernel as #UD. Under PVM every #GP a process
//! raises goes through KVM's instruction emulator (PVM emulates ring-3
//! port I/O against the TSS bitmap that way), and the emulator does not
//! decode VEX or EVEX: it gives up, and KVM injects #UD for a failed
//! emulation at CPL 3. A `vmovaps` from a misaligned address or a VEX
//! load from a non-canonical one would then be SIGILL, where Linux sends
//! SIGSEGV (#GP). So a #UD on a VEX/EVEX instruction this CPU runs (the
//! feature in CPUID, its state enabled in XCR0) whose memory operand is
//! non-canonical, or misaligned for one of the aligned moves, is taken as
//! the #GP the CPU raised (#SS, SIGBUS, for a stack-based address). On
//! hardware KVM such an instruction faults with #GP itself and never gets
//! here. Gathers and scatters (a vector index) are left as they are.

use vkernel_abi::{TrapFrame, VextFrame};

/// What the faulting instruction really raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Real {
    /// #GP(0): SIGSEGV, SI_KERNEL.
    GeneralProtection,
    /// #SS(0) (a non-canonical rsp/rbp-based address): SIGBUS, SI_KERNEL.
    StackSegment,
}

/// CPU support for the two encodings, read once from what ring 3 sees.
fn supported(evex: bool) -> bool {
    let cpuid = |leaf: u32| core::arch::x86_64::__cpuid_count(leaf, 0);
    const OSXSAVE: u32 = 1 << 27;
    const AVX: u32 = 1 << 28;
    const AVX512F: u32 = 1 << 16;
    let l1 = cpuid(1);
    if l1.ecx & OSXSAVE == 0 || l1.ecx & AVX == 0 {
        return false;
    }
    let lo: u32;
    // SAFETY: XGETBV(0) is allowed in ring 3 once OSXSAVE is set (checked).
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") _, options(nomem, nostack))
    };
    if !evex {
        return lo & 0b110 == 0b110;
    }
    cpuid(0).eax >= 7 && cpuid(7).ebx & AVX512F != 0 && lo & 0xe6 == 0xe6
}

/// The register numbered `n` (ModRM/SIB order: rax, rcx, rdx, rbx, rsp,
/// rbp, rsi, rdi, r8..r15).
fn reg(tf: &TrapFrame, n: u8) -> u64 {
    match n & 15 {
        0 => tf.rax,
        1 => tf.rcx,
        2 => tf.rdx,
        3 => tf.rbx,
        4 => tf.rsp,
        5 => tf.rbp,
        6 => tf.rsi,
        7 => tf.rdi,
        8 => tf.r8,
        9 => tf.r9,
        10 => tf.r10,
        11 => tf.r11,
        12 => tf.r12,
        13 => tf.r13,
        14 => tf.r14,
        _ => tf.r15,
    }
}

fn canonical(a: u64) -> bool {
    ((a as i64) << 16 >> 16) as u64 == a
}

/// Decodes the instruction in `code` (read at `tf.rip`) and says what it
/// raised, or `None` when the #UD stands. `cpu_ok(evex)` says whether the
/// CPU runs that encoding (a parameter for the tests' sake).
pub fn classify(
    code: &[u8],
    tf: &TrapFrame,
    vf: &VextFrame,
    cpu_ok: impl Fn(bool) -> bool,
) -> Option<Real> {
    let mut at = 0usize;
    let byte = |i: usize| code.get(i).copied();
    let mut seg_base = 0u64;
    let mut addr32 = false;
    // Prefixes allowed before VEX/EVEX (66, F2, F3, F0 and REX make it #UD).
    loop {
        match byte(at)? {
            0x2e | 0x36 | 0x3e | 0x26 => {}
            0x64 => seg_base = vf.tls[0].base,
            0x65 => seg_base = vf.tls[1].base,
            0x67 => addr32 = true,
            _ => break,
        }
        at += 1;
        if at > 4 {
            return None;
        }
    }
    // (opcode map, pp, vector bytes, index and base high bits, EVEX)
    let (map, pp, vl, x, b, evex);
    match byte(at)? {
        0xc5 => {
            let p = byte(at + 1)?;
            (map, pp, vl, x, b, evex) = (1, p & 3, 16u64 << ((p >> 2) & 1), 0, 0, false);
            at += 2;
        }
        0xc4 => {
            let (p0, p1) = (byte(at + 1)?, byte(at + 2)?);
            x = u8::from(p0 & 0x40 == 0) << 3;
            b = u8::from(p0 & 0x20 == 0) << 3;
            (map, pp, vl, evex) = (p0 & 0x1f, p1 & 3, 16u64 << ((p1 >> 2) & 1), false);
            at += 3;
        }
        0x62 => {
            let (p0, p1, p2) = (byte(at + 1)?, byte(at + 2)?, byte(at + 3)?);
            if p1 & 0x04 == 0 {
                return None; // not a valid EVEX (bit 10 is always 1)
            }
            x = u8::from(p0 & 0x40 == 0) << 3;
            b = u8::from(p0 & 0x20 == 0) << 3;
            let ll = (p2 >> 5) & 3;
            if ll == 3 {
                return None;
            }
            (map, pp, vl, evex) = (p0 & 7, p1 & 3, 16u64 << ll, true);
            at += 4;
        }
        _ => return None,
    }
    if !cpu_ok(evex) {
        return None;
    }
    let op = byte(at)?;
    let modrm = byte(at + 1)?;
    at += 2;
    let (md, rm) = (modrm >> 6, modrm & 7);
    if md == 3 {
        return None; // no memory operand
    }
    // Gathers/scatters (0F38 90-93, A0-A3) and the prefetch gathers
    // (0F38 C6/C7) index with a vector register.
    if map == 2 && matches!(op, 0x90..=0x93 | 0xa0..=0xa3 | 0xc6 | 0xc7) {
        return None;
    }
    let mut stack = false;
    let mut ea: u64;
    if rm == 4 {
        let sib = byte(at)?;
        at += 1;
        let (scale, index, base) = (sib >> 6, ((sib >> 3) & 7) | x, (sib & 7) | b);
        ea = if index == 4 {
            0
        } else {
            reg(tf, index) << scale
        };
        if md == 0 && base & 7 == 5 {
            let d = i32::from_le_bytes(code.get(at..at + 4)?.try_into().ok()?);
            ea = ea.wrapping_add(d as i64 as u64);
            at += 4;
        } else {
            stack = matches!(base, 4 | 5);
            ea = ea.wrapping_add(reg(tf, base));
        }
    } else if md == 0 && rm == 5 {
        // RIP-relative: canonical in practice; only the alignment matters,
        // and the aligned moves below take no immediate.
        let d = i32::from_le_bytes(code.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        ea = tf.rip.wrapping_add(at as u64).wrapping_add(d as i64 as u64);
    } else {
        let base = rm | b;
        stack = base == 5;
        ea = reg(tf, base);
    }
    // Displacement; EVEX scales a disp8 by the operand size (disp8*N),
    // which depends on the instruction: take the range N = 1..=64.
    let (mut lo, mut hi) = (0i64, 0i64);
    match md {
        1 => {
            let d = i64::from(byte(at)? as i8);
            if evex {
                (lo, hi) = (d.min(d * 64), d.max(d * 64));
            } else {
                (lo, hi) = (d, d);
            }
        }
        2 => {
            let d = i64::from(i32::from_le_bytes(code.get(at..at + 4)?.try_into().ok()?));
            (lo, hi) = (d, d);
        }
        _ => {}
    }
    let mut ea_lo = ea.wrapping_add(lo as u64);
    let mut ea_hi = ea.wrapping_add(hi as u64);
    if addr32 {
        ea_lo &= 0xffff_ffff;
        ea_hi &= 0xffff_ffff;
    }
    ea_lo = ea_lo.wrapping_add(seg_base);
    ea_hi = ea_hi.wrapping_add(seg_base);
    if !canonical(ea_lo) && !canonical(ea_hi) {
        // A stack-based address faults with #SS, unless a segment prefix
        // (fs/gs) overrides it.
        return Some(if stack && seg_base == 0 {
            Real::StackSegment
        } else {
            Real::GeneralProtection
        });
    }
    // The moves that need their operand aligned to the vector size:
    // vmovaps/vmovapd (0F 28/29), vmovntps/pd (0F 2B), vmovdqa and
    // EVEX vmovdqa32/64 (66 0F 6F/7F), vmovntdq (66 0F E7), vmovntdqa
    // (66 0F38 2A). For EVEX with disp8, N is the vector size.
    let aligned = matches!(
        (map, pp, op),
        (1, 0 | 1, 0x28 | 0x29 | 0x2b) | (1, 1, 0x6f | 0x7f | 0xe7) | (2, 1, 0x2a)
    );
    if aligned {
        let d = match md {
            1 if evex => i64::from(byte(at)? as i8) * vl as i64,
            _ => lo,
        };
        let mut a = ea.wrapping_add(d as u64);
        if addr32 {
            a &= 0xffff_ffff;
        }
        a = a.wrapping_add(seg_base);
        if !a.is_multiple_of(vl) {
            return Some(Real::GeneralProtection);
        }
    }
    None
}

/// [`classify`] with this CPU's support.
pub fn real_fault(code: &[u8], tf: &TrapFrame, vf: &VextFrame) -> Option<Real> {
    classify(code, tf, vf, supported)
}
