//! The context switch: `vmspace_ctl(RUN)` puts a process on the vCPU, and
//! everything that takes it off again (its `syscall`, an exception, the
//! end of its time slice) builds the trap frame and puts the guest kernel
//! back (the seed's `vkernel_trap`). Exceptions of the guest kernel itself
//! end the run with a crash report.

use kvm_bindings::{kvm_regs, kvm_sregs};
use vkernel_abi::frame::{
    trapno_for_vector, vector_has_error_code, T_PAGEFLT, T_PROTFLT, T_TIMEOUT,
};
use vkernel_abi::{layout, selector, Errno, TrapFrame, VextFrame, HC_PORT_COUNT, VMSPACE_CTL_RUN};
use vmspace::FaultOutcome;

use super::{Handled, Machine, ProcessFault, Running, Stop, Violation};
use crate::crash::KernelCrash;
use crate::error::Error;
use crate::hypercall;
use crate::process;
use crate::trap_area;
use crate::vcpu::Vcpu;
use crate::vm;

/// The hardware exception frame the CPU pushed on the trap stack.
pub(crate) struct HwFrame {
    pub(crate) err: u64,
    pub(crate) rip: u64,
    pub(crate) cs: u64,
    pub(crate) rflags: u64,
    pub(crate) rsp: u64,
    pub(crate) ss: u64,
}

/// The arguments of `vmspace_ctl`, as the hypercall named them.
pub(crate) struct Ctl {
    pub(crate) id: u64,
    pub(crate) cmd: u64,
    pub(crate) tframe: u64,
    pub(crate) vframe: u64,
    pub(crate) timeout_us: u64,
}

impl<V: Vcpu> Machine<V> {
    /// `vmspace_ctl(id, cmd, tframe, vframe, timeout_us)` from the block at
    /// `block`: the seed's checks in the seed's order, then the switch to
    /// the process. The outer error is the host's; the inner one is the
    /// guest's errno (nothing was switched).
    pub(crate) fn enter_process(
        &mut self,
        block: u64,
        ctl: Ctl,
    ) -> Result<Result<(), Errno>, Error> {
        let Ctl {
            id,
            cmd,
            tframe,
            vframe,
            timeout_us,
        } = ctl;
        if !self.guest.registry.contains(id) {
            return Ok(Err(Errno::ENOENT));
        }
        if cmd != VMSPACE_CTL_RUN {
            return Ok(Err(Errno::EOPNOTSUPP));
        }
        let frames = self
            .guest
            .ram
            .read_obj::<TrapFrame>(tframe)
            .and_then(|tf| Ok((tf, self.guest.ram.read_obj::<VextFrame>(vframe)?)));
        let (tf, vf) = match frames {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = process::check_frame(&tf, &vf) {
            return Ok(Err(e));
        }
        // A fresh guest-pmap shadow (a fork's child) would fault on its
        // first instruction: resolved here, one exit fewer.
        self.guest.registry.prefault_fetch(id, tf.rip);
        let cr3 = match self.guest.registry.acquire_for_run(id) {
            Ok(cr3) => cr3,
            Err(e) => return Ok(Err(e)),
        };
        if self.guest.registry.take_translation_reduced() {
            self.flush_translations()?;
        }

        // Save the kernel's context. Its RIP is on the `out dx, eax` (one
        // byte, 0xef) that made this hypercall; resume past it.
        let (mut kernel_regs, kernel_sregs) = self.vcpu.context();
        if self.guest.ram.read_obj::<u8>(kernel_regs.rip) == Ok(0xef) {
            kernel_regs.rip += 1;
        }

        let mut sregs = kernel_sregs;
        vm::set_tr(&mut sregs, selector::TSS_PROCESS);
        sregs.cr3 = cr3;
        sregs.fs.base = vf.tls[0].base;
        sregs.gs.base = vf.tls[1].base;
        self.vcpu
            .set_context(&process::regs_from_frame(&tf), &sregs);
        self.running = Some(Running {
            id,
            tframe,
            vframe,
            block,
            kernel_regs,
            kernel_sregs,
        });
        self.hook(|h, cpu| h.entered_process(cpu));
        // 0 is no timeout; anything else at least what KVM can deliver.
        self.timer.arm(
            if timeout_us == 0 {
                0
            } else {
                timeout_us.max(vkernel_abi::RUN_TIMEOUT_MIN_US)
            },
            self.exited_at,
        );
        Ok(Ok(()))
    }

    /// Gives the trap frame to the guest kernel and puts it back on the
    /// vCPU: `vmspace_ctl` returns 0 (the seed's vkernel_trap).
    pub(crate) fn leave_process(&mut self, mut tf: TrapFrame) -> Handled {
        let (trapno, rax, addr, err, rip) = (tf.trapno, tf.rax, tf.addr, tf.err, tf.rip);
        log::trace!("TRAP {trapno:#x} rax {rax} addr {addr:#x} err {err:#x} rip {rip:#x}");
        self.emulation_retry = None;
        if self.running.is_some() {
            self.hook(|h, cpu| h.leaving_process(cpu, &mut tf));
        }
        let Some(r) = self.running.take() else {
            return Err(Violation::TrapWithoutProcess.into());
        };
        // The slice timer stays armed (see `SliceTimer`).
        self.slice_over = false;
        self.stats.traps_delivered += 1;
        let kind = match tf.trapno {
            vkernel_abi::frame::T_FAST_SYSCALL => 0,
            T_PAGEFLT => 1,
            T_TIMEOUT => 2,
            _ => 3,
        };
        self.stats.traps_by_kind[kind] += 1;
        let vf = process::vext_from_sregs(&self.vcpu.context().1);
        // Both frames were read from RAM when ctl checked them, so these
        // writes cannot fail.
        let ram = &self.guest.ram;
        let _ = ram.write_obj(r.tframe, &tf);
        let _ = ram.write_obj(r.vframe, &vf);
        hypercall::write_result(ram, r.block, Ok(0));
        let _ = self.guest.registry.release(r.id);
        self.vcpu.set_context(&r.kernel_regs, &r.kernel_sregs);
        Ok(())
    }

    /// The vCPU was interrupted by the slice timer (or a stray signal).
    pub(crate) fn on_interrupted(&mut self) -> Handled {
        if self.running.is_none() {
            return Ok(()); // a late timer while the kernel runs: ignore
        }
        if self.hooks_kick_vcpu() && !self.timer.expired() {
            // The debugger's kick (maybe one that raced with a stop), not
            // the time slice.
            return Ok(());
        }
        let (regs, sregs) = self.vcpu.context();
        if sregs.cs.selector & 3 == 0 {
            // Interrupted between an exception's delivery and its stub's
            // `out`: let the stub run and report the exception.
            self.slice_over = true;
            return Ok(());
        }
        if self.vcpu.exception_pending() {
            // Interrupted after the process raised an exception but before
            // KVM delivered it. KVM keeps it queued across the exit: were
            // the kernel put on the vCPU now, it would receive the process's
            // exception. Let it be delivered; the stub reports it, and the
            // slice ends there even if the host resolves the fault.
            self.slice_over = true;
            return Ok(());
        }
        let tf = if regs.rip == layout::SYSCALL_STUB_ADDR {
            // The slice ended after the process's `syscall` but before the
            // stub's `out`: the system call was made, so report it as one.
            // (A timeout frame would carry a rip inside the trap area,
            // which ctl then rightly refuses to resume.)
            process::syscall_frame(&regs)
        } else {
            let mut tf = process::frame_from_regs(&regs);
            tf.trapno = T_TIMEOUT;
            tf
        };
        self.leave_process(tf)
    }

    /// The process executed `syscall`, which landed on the stub page and its
    /// `out`. RCX/R11 hold the return RIP and RFLAGS, as on Linux.
    pub(crate) fn on_syscall(&mut self) -> Handled {
        let (regs, _) = self.vcpu.context();
        let rip = regs.rip;
        let tf = if rip == layout::SYSCALL_STUB_ADDR
            || rip == layout::SYSCALL_STUB_ADDR + trap_area::STUB_OUT_LEN
        {
            process::syscall_frame(&regs)
        } else {
            // The process ran an `out` to the syscall port by itself: the
            // port is open to it, but only the stub's `out` is a system call.
            return self.process_fault(ProcessFault::NotStub { rip });
        };
        self.leave_process(tf)
    }

    /// The process made an exit the protocol does not expect (`fault`):
    /// the guest kernel gets `T_PROTFLT` with the process's registers at
    /// that instruction. KVM's unfinished business with the exit is done
    /// first, in the process's context (see
    /// [`Vcpu::finish_pending_exit`]), so none of it reaches the kernel.
    pub(crate) fn process_fault(&mut self, fault: ProcessFault) -> Handled {
        let (regs, _) = self.vcpu.context();
        self.vcpu.finish_pending_exit()?;
        self.stats.process_faults += 1;
        if let Some(r) = &self.running {
            log::debug!(
                "vmspace {:#x} at rip {:#x}: {fault}: T_PROTFLT",
                r.id,
                regs.rip
            );
        }
        let mut tf = process::frame_from_regs(&regs);
        tf.trapno = T_PROTFLT;
        self.leave_process(tf)
    }

    /// Reads the exception frame the CPU pushed for `vector`.
    fn hw_frame(&self, vector: u8) -> Option<HwFrame> {
        let mut raw = [0u8; 48];
        let has_err = vector_has_error_code(vector);
        let len = if has_err { 48 } else { 40 };
        if !self
            .guest
            .read_trap_area(trap_area::exception_frame_addr(vector), &mut raw[..len])
        {
            return None;
        }
        let word =
            |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let (err, b) = if has_err { (word(0), 1) } else { (0, 0) };
        Some(HwFrame {
            err,
            rip: word(b),
            cs: word(b + 1),
            rflags: word(b + 2),
            rsp: word(b + 3),
            ss: word(b + 4),
        })
    }

    /// An exception stub ran. It must be the real stub, in ring 0: ring 3
    /// cannot reach these ports (no I/O bitmap opens them), so anything else
    /// stops the run.
    pub(crate) fn on_exception(&mut self, vector: u8) -> Handled {
        let (stub_regs, sregs) = self.vcpu.context();
        // The emulator runs ring-0 code here and has completed the `out` by
        // the time we see it (RIP past it); fast-path KVM leaves RIP on it.
        let stub = trap_area::stub_addr(vector);
        if sregs.cs.selector & 3 != 0 && self.running.is_some() {
            // No I/O bitmap opens these ports to ring 3; should a CPU let
            // the process's `out` through anyway, it is the process's fault.
            return self.process_fault(ProcessFault::TrapPort { vector });
        }
        if sregs.cs.selector & 3 != 0
            || (stub_regs.rip != stub && stub_regs.rip != stub + trap_area::STUB_OUT_LEN)
        {
            return Err(Violation::NotTrapStub {
                vector,
                rip: stub_regs.rip,
                cs: sregs.cs.selector,
            }
            .into());
        }
        let Some(mut hw) = self.hw_frame(vector) else {
            return Err(Violation::NoExceptionFrame { vector }.into());
        };
        let mut regs = stub_regs;
        regs.rip = hw.rip;
        regs.rflags = hw.rflags;
        regs.rsp = hw.rsp;
        if vector == 1 || vector == 3 {
            // A hook that claims the trap has not touched the vCPU when it
            // declines, so `regs`/`sregs` stay current.
            if let Some(handled) = self
                .hook(|h, cpu| h.debug_trap(cpu, vector, regs, sregs))
                .flatten()
            {
                return handled;
            }
        }
        let Some(r) = &self.running else {
            return Err(Stop::Crash(Box::new(kernel_crash(
                vector, &hw, regs, sregs,
            ))));
        };
        let id = r.id;
        let (user_cs, user_ss) = (r.kernel_sregs.cs, r.kernel_sregs.ss);
        if vector == 14 {
            let outcome = self.guest.registry.handle_fault(id, sregs.cr2, hw.err);
            if let Ok(FaultOutcome::DeliverWith { error_code }) = outcome {
                // The guest's own tables refused it (MAP_VPAGETABLE): the
                // error code is the one they give, not the shadow's.
                hw.err = error_code;
            }
            if let Ok(FaultOutcome::Resolved) = outcome {
                log::trace!("HOSTFAULT {:#x} err {:#x}", sregs.cr2, hw.err);
                self.stats.faults_resolved += 1;
                if self.guest.registry.take_translation_reduced() {
                    self.flush_translations()?;
                }
                if self.slice_over {
                    // The time slice ended while the fault was on its way:
                    // give the kernel its timeout; the process re-runs the
                    // instruction, now mapped, when it is next scheduled.
                    let mut tf = process::frame_from_regs(&regs);
                    tf.trapno = T_TIMEOUT;
                    return self.leave_process(tf);
                }
                // Resume the process where it faulted, as `iretq` would.
                let mut sregs = sregs;
                sregs.cs = user_cs;
                sregs.ss = user_ss;
                self.vcpu.set_context(&regs, &sregs);
                self.hook(|h, cpu| h.fault_resolved(cpu));
                return Ok(());
            }
        }
        let mut tf = process::frame_from_regs(&regs);
        tf.trapno = trapno_for_vector(vector);
        tf.err = hw.err;
        if vector == 14 {
            tf.trapno = T_PAGEFLT;
            tf.addr = sregs.cr2;
        }
        self.leave_process(tf)
    }

    fn hooks_kick_vcpu(&mut self) -> bool {
        self.hook(|h, _| h.kicks_vcpu()).unwrap_or(false)
    }

    /// KVM on these machines shadows guest page tables and trusts its
    /// write-protection to see every change; the host's own writes to a
    /// vmspace's tables bypass that, so after a translation was removed or
    /// reduced, the shadow state is dropped before the process runs again.
    pub(crate) fn flush_translations(&mut self) -> Result<(), Error> {
        self.stats.translation_flushes += 1;
        let asker = self.flush_asker.take().unwrap_or(HC_PORT_COUNT) as usize;
        self.stats.flushes_by_nr[asker] += 1;
        let t0 = std::time::Instant::now();
        let r = self.vcpu.drop_shadow_translations();
        self.stats.flush_ns += t0.elapsed().as_nanos() as u64;
        r
    }
}

/// The guest kernel's exception as a crash: the interrupted context is in
/// the hardware frame; the synced registers hold the stub's view (ring 0,
/// trap stack), so the selectors come from the frame.
fn kernel_crash(vector: u8, hw: &HwFrame, regs: kvm_regs, mut sregs: kvm_sregs) -> KernelCrash {
    sregs.cs.selector = hw.cs as u16;
    sregs.ss.selector = hw.ss as u16;
    KernelCrash {
        vector,
        err: hw.err,
        regs,
        sregs,
    }
}
