//! The Linux x86-64 signal frame (`struct rt_sigframe`), built on the user
//! stack (or the alternate one) where Linux's get_sigframe puts it, and
//! read back by rt_sigreturn. glibc, musl and Go read it, so its layout is
//! Linux's to the byte:
//!
//! ```text
//! sp →   0  pretcode (sa_restorer: the handler's return address)
//!        8  ucontext: uc_flags, uc_link, uc_stack{sp, flags, size},
//!           48 sigcontext (256 bytes: r8..r15, rdi, rsi, rbp, rbx, rdx,
//!           rax, rcx, rsp, rip, eflags, cs/gs/fs/ss, err, trapno,
//!           oldmask, cr2, fpstate, reserved), 304 uc_sigmask
//!      312  siginfo (128 bytes)
//!      440  (gap, then at a 64-byte boundary above:) fpstate — the XSAVE
//!           image with Linux's software bytes and FP_XSTATE_MAGIC2 after
//! ```

use alloc::vec;

use super::fpu::{FXSAVE_BYTES, XSAVE_HEADER};
use super::signal::{Action, AltStack, SigInfo, SigSet, SIG_DFL};
use super::ProcTable;
use crate::mm::uaccess::{copy_in, copy_out, user_range};
use linux_raw_sys::general as linux;
use vkernel_abi::frame::*;
use vkernel_abi::{rflags, selector, Errno, TrapFrame};

const FRAME_BYTES: u64 = 440;
const UC: usize = 8;
const UC_STACK: usize = UC + 16;
const MCONTEXT: usize = UC + 40;
const UC_SIGMASK: usize = UC + 296;
const INFO: usize = 312;

/// The registers in sigcontext order (offset from MCONTEXT / 8).
const RIP: usize = 16;
const RSP: usize = 15;
const EFLAGS: usize = 17;
const SEGMENTS: usize = 18;
const ERR: usize = 19;
const TRAPNO: usize = 20;
const OLDMASK: usize = 21;
const CR2: usize = 22;
const FPSTATE: usize = 23;

const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Where Linux's `_fpx_sw_bytes` sit in the FXSAVE area.
const SW_BYTES: usize = 464;
/// The flags rt_sigreturn takes from the frame (Linux's FIX_EFLAGS).
const FIX_EFLAGS: u64 = rflags::AC
    | (1 << 11)
    | rflags::DF
    | rflags::TF
    | (1 << 7)
    | (1 << 6)
    | (1 << 4)
    | (1 << 2)
    | rflags::CF
    | rflags::RF;

/// The general registers of `tf` in sigcontext order.
fn regs_of(tf: &TrapFrame) -> [u64; 17] {
    [
        tf.r8, tf.r9, tf.r10, tf.r11, tf.r12, tf.r13, tf.r14, tf.r15, tf.rdi, tf.rsi, tf.rbp,
        tf.rbx, tf.rdx, tf.rax, tf.rcx, tf.rsp, tf.rip,
    ]
}

/// Linux's trap number for a DragonFly one (sigcontext.trapno).
fn linux_trapno(trap: u64) -> u64 {
    match trap {
        T_DIVIDE => 0,
        T_TRCTRAP => 1,
        T_BPTFLT => 3,
        T_OFLOW => 4,
        T_BOUND => 5,
        T_PRIVINFLT => 6,
        T_SEGNPFLT => 11,
        T_STKFLT => 12,
        T_PROTFLT => 13,
        T_PAGEFLT => 14,
        T_ARITHTRAP => 16,
        T_ALIGNFLT => 17,
        T_XMMFLT => 19,
        _ => 0,
    }
}

fn put(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// `uc_stack.ss_flags` for a process whose stack pointer is `sp`
/// (Linux's sas_ss_flags).
fn stack_flags(alt: &AltStack, sp: u64) -> u32 {
    if alt.flags & linux::SS_DISABLE != 0 || alt.size == 0 {
        linux::SS_DISABLE
    } else if alt.on(sp) {
        linux::SS_ONSTACK
    } else {
        0
    }
}

impl ProcTable {
    /// Builds the frame for handler `act` of `info` on process `s` and
    /// points its registers at the handler, as Linux's setup_rt_frame and
    /// signal_setup_done; `mask` is the mask to save (and restore at
    /// rt_sigreturn). `Err` when the frame cannot be written (no room, a
    /// bad stack, no SA_RESTORER): the caller forces SIGSEGV.
    pub fn setup_frame(
        &mut self,
        s: usize,
        info: &SigInfo,
        act: &Action,
        mask: SigSet,
    ) -> Result<(), Errno> {
        let fpu = self.fpu;
        let sig = info.signo();
        let tf = self.procs[s].tf;
        let alt = self.procs[s].sig.altstack;
        if !act.has(linux::SA_RESTORER) {
            return Err(Errno::EFAULT);
        }
        // get_sigframe: below the red zone, or at the top of the
        // alternate stack; the FPU image 64-byte aligned; the frame so
        // that the handler starts as after a call (rsp + 8 aligned 16).
        let mut sp = tf.rsp.wrapping_sub(128);
        let on_alt = alt.on(sp);
        let entering_alt = act.has(linux::SA_ONSTACK) && stack_flags(&alt, sp) == 0;
        if entering_alt {
            sp = alt.sp.wrapping_add(alt.size);
        }
        let fp_bytes = fpu.size as u64 + if fpu.xsave { 4 } else { 0 };
        let fpstate = sp.wrapping_sub(fp_bytes) & !63;
        let frame = (fpstate.wrapping_sub(FRAME_BYTES) & !15).wrapping_sub(8);
        if (on_alt || entering_alt) && !alt.on(frame) {
            return Err(Errno::EFAULT);
        }
        let total = fpstate + fp_bytes - frame;
        if frame > fpstate || !user_range(frame, total) {
            return Err(Errno::EFAULT);
        }
        let space = self.procs[s].space();
        if !space.borrow().allows(frame, total, 2) {
            return Err(Errno::EFAULT);
        }

        let mut b = vec![0u8; FRAME_BYTES as usize];
        put(&mut b, 0, act.restorer);
        let uc_flags =
            UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | if fpu.xsave { UC_FP_XSTATE } else { 0 };
        put(&mut b, UC, uc_flags);
        put(&mut b, UC_STACK, alt.sp);
        put(&mut b, UC_STACK + 8, stack_flags(&alt, tf.rsp) as u64);
        put(&mut b, UC_STACK + 16, alt.size);
        for (i, r) in regs_of(&tf).iter().enumerate() {
            put(&mut b, MCONTEXT + i * 8, *r);
        }
        put(&mut b, MCONTEXT + EFLAGS * 8, tf.rflags);
        // cs, gs, fs, ss as four u16s.
        put(&mut b, MCONTEXT + SEGMENTS * 8, tf.cs | (tf.ss << 48));
        if super::signal::for_trap(tf.trapno, tf.err).0 == sig && info.code() > 0 {
            put(&mut b, MCONTEXT + ERR * 8, tf.err);
            put(&mut b, MCONTEXT + TRAPNO * 8, linux_trapno(tf.trapno));
            put(&mut b, MCONTEXT + CR2 * 8, info.addr());
        }
        put(&mut b, MCONTEXT + OLDMASK * 8, mask.0);
        put(&mut b, MCONTEXT + FPSTATE * 8, fpstate);
        put(&mut b, UC_SIGMASK, mask.0);
        if act.has(linux::SA_SIGINFO) {
            b[INFO..INFO + 128].copy_from_slice(&info.0);
        }

        let Some(img) = self.fpu_image(s) else {
            return Err(Errno::EFAULT);
        };
        let mut fp = vec![0u8; fp_bytes as usize];
        fp[..fpu.size].copy_from_slice(img.bytes());
        if fpu.xsave {
            let sw = &mut fp[SW_BYTES..SW_BYTES + 48];
            sw.fill(0);
            sw[0..4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
            sw[4..8].copy_from_slice(&(fp_bytes as u32).to_le_bytes());
            sw[8..16].copy_from_slice(&fpu.features.to_le_bytes());
            sw[16..20].copy_from_slice(&(fpu.size as u32).to_le_bytes());
            fp[fpu.size..].copy_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
        }
        copy_out(&space, frame, &b)?;
        copy_out(&space, fpstate, &fp)?;

        // The handler starts with a clean FPU (Linux's
        // fpu__clear_user_states), on the new frame.
        if let Some(img) = self.fpu_image(s) {
            fpu.reset(img);
        }
        self.fpu_changed(s);
        let p = &mut self.procs[s];
        if entering_alt && alt.flags & linux::SS_AUTODISARM != 0 {
            p.sig.altstack = AltStack::disabled();
        }
        let tf = &mut p.tf;
        tf.rdi = sig as u64;
        tf.rsi = frame + INFO as u64;
        tf.rdx = frame + UC as u64;
        tf.rax = 0;
        tf.rsp = frame;
        tf.rip = act.handler;
        tf.rflags &= !(rflags::DF | rflags::RF | rflags::TF);
        tf.cs = selector::USER_CS as u64;
        tf.ss = selector::USER_SS as u64;
        // signal_setup_done: block the handler's mask and (unless
        // SA_NODEFER) the signal itself; SA_RESETHAND: once only.
        let mut blocked = SigSet(p.sig.mask.0 | act.mask.0);
        if !act.has(linux::SA_NODEFER) {
            blocked.add(sig);
        }
        p.sig.mask = blocked.blockable();
        if act.has(linux::SA_RESETHAND) {
            let mut a = *act;
            a.handler = SIG_DFL;
            a.flags &= !(linux::SA_SIGINFO as u64);
            p.actions.borrow_mut().set(sig, a);
        }
        Ok(())
    }

    /// rt_sigreturn: the registers, mask, alternate stack and FPU state
    /// saved in the frame below the stack pointer. `Err` for a frame that
    /// cannot be read or holds an FPU image the CPU would refuse: the
    /// caller forces SIGSEGV (the kernel never loads it).
    pub fn sigreturn(&mut self, s: usize) -> Result<u64, Errno> {
        let fpu = self.fpu;
        let space = self.procs[s].space();
        let frame = self.procs[s].tf.rsp.wrapping_sub(8);
        let mut b = vec![0u8; FRAME_BYTES as usize];
        if !user_range(frame, FRAME_BYTES) {
            return Err(Errno::EFAULT);
        }
        copy_in(&space, frame, &mut b)?;
        let reg = |i: usize| get(&b, MCONTEXT + i * 8);

        // The FPU image first: nothing changes if it is bad.
        let fpstate = reg(FPSTATE);
        let mut img = vec![0u8; fpu.size];
        if fpstate != 0 {
            if !user_range(fpstate, fpu.size as u64) {
                return Err(Errno::EFAULT);
            }
            copy_in(&space, fpstate, &mut img)?;
            let sw =
                |at: usize| u32::from_le_bytes([img[at], img[at + 1], img[at + 2], img[at + 3]]);
            let full = fpu.xsave
                && get(&b, UC) & UC_FP_XSTATE != 0
                && sw(SW_BYTES) == FP_XSTATE_MAGIC1
                && sw(SW_BYTES + 16) as usize == fpu.size
                && {
                    let mut m = [0u8; 4];
                    copy_in(&space, fpstate + fpu.size as u64, &mut m).is_ok()
                        && u32::from_le_bytes(m) == FP_XSTATE_MAGIC2
                };
            if fpu.xsave && !full {
                // Only the legacy area: x87 and SSE from it, the rest in
                // its init state.
                img[FXSAVE_BYTES..].fill(0);
                img[XSAVE_HEADER] = 0b11;
            }
            if !fpu.check(&img) {
                return Err(Errno::EFAULT);
            }
        }

        // The alternate stack as saved (errors other than a fault are
        // ignored, as Linux's restore_altstack).
        let ss_sp = get(&b, UC_STACK);
        let ss_flags = get(&b, UC_STACK + 8) as u32;
        let ss_size = get(&b, UC_STACK + 16);
        let cur_sp = self.procs[s].tf.rsp;
        let _ = self.set_altstack(s, cur_sp, ss_sp, ss_flags, ss_size);

        match self.fpu_image(s) {
            Some(a) if fpstate != 0 => a.bytes_mut().copy_from_slice(&img),
            Some(a) => fpu.reset(a),
            None => {}
        }
        self.fpu_changed(s);

        let p = &mut self.procs[s];
        let tf = &mut p.tf;
        tf.r8 = reg(0);
        tf.r9 = reg(1);
        tf.r10 = reg(2);
        tf.r11 = reg(3);
        tf.r12 = reg(4);
        tf.r13 = reg(5);
        tf.r14 = reg(6);
        tf.r15 = reg(7);
        tf.rdi = reg(8);
        tf.rsi = reg(9);
        tf.rbp = reg(10);
        tf.rbx = reg(11);
        tf.rdx = reg(12);
        tf.rax = reg(13);
        tf.rcx = reg(14);
        tf.rsp = reg(RSP);
        tf.rip = reg(RIP);
        tf.rflags = (tf.rflags & !FIX_EFLAGS) | (reg(EFLAGS) & FIX_EFLAGS);
        tf.cs = selector::USER_CS as u64;
        tf.ss = selector::USER_SS as u64;
        p.sig.mask = SigSet(get(&b, UC_SIGMASK)).blockable();
        Ok(tf.rax)
    }

    /// sigaltstack's change: `sp` is the caller's stack pointer (no change
    /// while on the alternate stack: EPERM); flags 0, SS_ONSTACK (as 0) or
    /// SS_DISABLE, optionally with SS_AUTODISARM; a size below
    /// MINSIGSTKSZ is ENOMEM.
    pub fn set_altstack(
        &mut self,
        s: usize,
        sp: u64,
        ss_sp: u64,
        flags: u32,
        size: u64,
    ) -> Result<(), Errno> {
        let p = &mut self.procs[s];
        if p.sig.altstack.on(sp) {
            return Err(Errno::EPERM);
        }
        let mode = flags & !linux::SS_FLAG_BITS;
        if mode != linux::SS_DISABLE && mode != linux::SS_ONSTACK && mode != 0 {
            return Err(Errno::EINVAL);
        }
        p.sig.altstack = if mode == linux::SS_DISABLE {
            AltStack::disabled()
        } else {
            if size < linux::MINSIGSTKSZ as u64 {
                return Err(Errno::ENOMEM);
            }
            AltStack {
                sp: ss_sp,
                size,
                flags: flags & linux::SS_FLAG_BITS,
            }
        };
        Ok(())
    }
}
