//! Process contexts: turning a DragonFly trap frame into vCPU registers
//! for `vmspace_ctl(RUN)` (after the seed's `cpu_sanitize_frame` checks),
//! and the registers back into a trap frame when the process traps.

use kvm_bindings::{kvm_regs, kvm_sregs};
use vkernel_abi::frame::T_FAST_SYSCALL;
use vkernel_abi::{layout, rflags, selector, Errno, TrapFrame, VextFrame};

/// Whether `addr` is a canonical lower-half address a process may use.
fn user_canonical(addr: u64) -> bool {
    addr < layout::VM_MAX_USER_ADDRESS
}

/// The seed's `cpu_sanitize_frame` and `cpu_sanitize_tls`, strict: a frame
/// that would run in ring 0, with other segments, raised IOPL, IF clear,
/// V86/NT/VIF/VIP, or a RIP/RSP/TLS base outside the user half is EINVAL.
pub fn check_frame(tf: &TrapFrame, vf: &VextFrame) -> Result<(), Errno> {
    let (cs, ss, fl, rip, rsp) = (tf.cs, tf.ss, tf.rflags, tf.rip, tf.rsp);
    if cs != selector::USER_CS as u64 || ss != selector::USER_SS as u64 {
        return Err(Errno::EINVAL);
    }
    if fl & rflags::IF == 0 || fl & !(rflags::USER_CHANGEABLE | rflags::IF | rflags::FIXED) != 0 {
        return Err(Errno::EINVAL);
    }
    if !user_canonical(rip) || !user_canonical(rsp) {
        return Err(Errno::EINVAL);
    }
    if vf.tls.iter().any(|t| !user_canonical(t.base)) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Registers to enter the process with (frame already checked).
pub fn regs_from_frame(tf: &TrapFrame) -> kvm_regs {
    kvm_regs {
        rax: tf.rax,
        rbx: tf.rbx,
        rcx: tf.rcx,
        rdx: tf.rdx,
        rsi: tf.rsi,
        rdi: tf.rdi,
        rsp: tf.rsp,
        rbp: tf.rbp,
        r8: tf.r8,
        r9: tf.r9,
        r10: tf.r10,
        r11: tf.r11,
        r12: tf.r12,
        r13: tf.r13,
        r14: tf.r14,
        r15: tf.r15,
        rip: tf.rip,
        rflags: tf.rflags | rflags::FIXED,
    }
}

/// A trap frame from the process's registers; the caller fills trapno,
/// err and addr, and the interrupted rip/rsp/rflags where they differ.
pub fn frame_from_regs(r: &kvm_regs) -> TrapFrame {
    TrapFrame {
        rdi: r.rdi,
        rsi: r.rsi,
        rdx: r.rdx,
        rcx: r.rcx,
        r8: r.r8,
        r9: r.r9,
        rax: r.rax,
        rbx: r.rbx,
        rbp: r.rbp,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        xflags: 0,
        trapno: 0,
        addr: 0,
        flags: 0,
        err: 0,
        rip: r.rip,
        cs: selector::USER_CS as u64,
        rflags: r.rflags,
        rsp: r.rsp,
        ss: selector::USER_SS as u64,
    }
}

/// The frame of a `syscall`: RCX and R11 hold the return RIP and RFLAGS
/// (as on Linux), `err` the instruction's length.
pub fn syscall_frame(r: &kvm_regs) -> TrapFrame {
    let mut tf = frame_from_regs(r);
    tf.trapno = T_FAST_SYSCALL;
    tf.err = 2;
    tf.rip = r.rcx;
    tf.rflags = r.r11;
    tf
}

/// The process's TLS bases as a vextframe.
pub fn vext_from_sregs(s: &kvm_sregs) -> VextFrame {
    let mut v = VextFrame::default();
    v.tls[0].base = s.fs.base;
    v.tls[0].size = -1;
    v.tls[1].base = s.gs.base;
    v.tls[1].size = -1;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> (TrapFrame, VextFrame) {
        let tf = TrapFrame {
            cs: selector::USER_CS as u64,
            ss: selector::USER_SS as u64,
            rflags: rflags::IF | rflags::FIXED,
            rip: 0x40_0000,
            rsp: 0x7fff_0000,
            ..Default::default()
        };
        (tf, VextFrame::default())
    }

    #[test]
    fn a_user_frame_passes() {
        let (tf, vf) = good();
        assert_eq!(check_frame(&tf, &vf), Ok(()));
        let mut tf2 = tf;
        tf2.rflags |= rflags::CF | rflags::TF | rflags::DF | rflags::AC | rflags::ID;
        assert_eq!(check_frame(&tf2, &vf), Ok(()));
    }

    #[test]
    fn ring0_segments_are_refused() {
        let (mut tf, vf) = good();
        tf.cs = selector::KERNEL_CS as u64;
        assert_eq!(check_frame(&tf, &vf), Err(Errno::EINVAL));
        let (mut tf, vf) = good();
        tf.ss = selector::KERNEL_SS as u64;
        assert_eq!(check_frame(&tf, &vf), Err(Errno::EINVAL));
        let (mut tf, vf) = good();
        tf.cs = selector::USER_CS as u64 & !3; // right descriptor, RPL 0
        assert_eq!(check_frame(&tf, &vf), Err(Errno::EINVAL));
    }

    #[test]
    fn iopl_if_and_mode_flags_are_refused() {
        for bad in [
            rflags::IOPL,
            1 << 12,
            rflags::NT,
            rflags::VM,
            rflags::VIF,
            rflags::VIP,
            1 << 30,
        ] {
            let (mut tf, vf) = good();
            tf.rflags |= bad;
            assert_eq!(
                check_frame(&tf, &vf),
                Err(Errno::EINVAL),
                "rflags bit {bad:#x}"
            );
        }
        let (mut tf, vf) = good();
        tf.rflags &= !rflags::IF;
        assert_eq!(check_frame(&tf, &vf), Err(Errno::EINVAL));
    }

    #[test]
    fn non_user_addresses_are_refused() {
        for addr in [
            0xffff_8000_0000_0000,
            0x8000_0000_0000,
            layout::TRAP_AREA_BASE,
            u64::MAX,
        ] {
            let (mut tf, vf) = good();
            tf.rip = addr;
            assert_eq!(check_frame(&tf, &vf), Err(Errno::EINVAL));
            let (mut tf, vf) = good();
            tf.rsp = addr;
            assert_eq!(check_frame(&tf, &vf), Err(Errno::EINVAL));
            let (tf, mut vf) = good();
            vf.tls[1].base = addr;
            assert_eq!(check_frame(&tf, &vf), Err(Errno::EINVAL));
        }
    }

    #[test]
    fn syscall_frame_returns_to_rcx_with_r11_flags() {
        let r = kvm_regs {
            rax: 39,
            rcx: 0x40_1234,
            r11: 0x246,
            rip: layout::SYSCALL_STUB_ADDR,
            ..Default::default()
        };
        let tf = syscall_frame(&r);
        assert_eq!({ tf.trapno }, T_FAST_SYSCALL);
        assert_eq!({ tf.err }, 2);
        assert_eq!({ tf.rip }, 0x40_1234);
        assert_eq!({ tf.rflags }, 0x246);
        assert_eq!({ tf.rax }, 39);
    }

    #[test]
    fn frame_round_trips_through_registers() {
        let (mut tf, _) = good();
        tf.rax = 1;
        tf.r15 = 15;
        tf.rbp = 7;
        let back = frame_from_regs(&regs_from_frame(&tf));
        assert_eq!({ back.rax }, 1);
        assert_eq!({ back.r15 }, 15);
        assert_eq!({ back.rbp }, 7);
        assert_eq!({ back.rip }, 0x40_0000);
    }
}
