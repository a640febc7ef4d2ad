//! The stopped guest as gdbstub's `Target`: registers from the snapshot of
//! whatever context is on the vCPU (taken when it stopped, written back
//! when it resumes), memory through that context's page tables, software
//! breakpoints, resume and single step. Called only while the guest is
//! stopped (the run loop is inside `Gdb::serve`) or the client is served
//! between two exits.

use gdbstub::common::Signal;
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, SwBreakpoint, SwBreakpointOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use gdbstub_arch::x86::X86_64_SSE;
use vkernel_abi::rflags;

use super::{lift, plant, read_virt, translate, write_virt, Resume, Target as Stopped};

impl Target for Stopped {
    type Arch = X86_64_SSE;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadBase for Stopped {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs) -> TargetResult<(), Self> {
        let (r, s) = (&self.cpu.regs, &self.cpu.sregs);
        // gdb's order: rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8-r15.
        regs.regs = [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ];
        regs.rip = r.rip;
        regs.eflags = r.rflags as u32;
        regs.segments.cs = s.cs.selector as u32;
        regs.segments.ss = s.ss.selector as u32;
        regs.segments.ds = s.ds.selector as u32;
        regs.segments.es = s.es.selector as u32;
        regs.segments.fs = s.fs.selector as u32;
        regs.segments.gs = s.gs.selector as u32;
        // FPU/SSE state (the current process's; the kernel is soft-float).
        if let Some(fpu) = &self.cpu.fpu {
            for (st, fpr) in regs.st.iter_mut().zip(fpu.fpr.iter()) {
                st.copy_from_slice(&fpr[..10]);
            }
            regs.fpu.fctrl = fpu.fcw as u32;
            regs.fpu.fstat = fpu.fsw as u32;
            regs.fpu.ftag = fpu.ftwx as u32;
            regs.fpu.fop = fpu.last_opcode as u32;
            regs.fpu.fioff = fpu.last_ip as u32;
            regs.fpu.fooff = fpu.last_dp as u32;
            for (x, v) in regs.xmm.iter_mut().zip(fpu.xmm.iter()) {
                *x = u128::from_le_bytes(*v);
            }
            regs.mxcsr = fpu.mxcsr;
        }
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs) -> TargetResult<(), Self> {
        let r = &mut self.cpu.regs;
        let g = regs.regs;
        (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp) =
            (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
        (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) =
            (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
        r.rip = regs.rip;
        // Only the flags ring 3 may change; IF stays on, IOPL 0. Segment
        // and FPU registers are read-only here.
        r.rflags = (regs.eflags as u64 & rflags::USER_CHANGEABLE) | rflags::IF | rflags::FIXED;
        self.cpu.dirty = true;
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        let cr3 = self.cpu.sregs.cr3;
        let n = read_virt(&self.mem, cr3, start, data);
        if n == 0 && !data.is_empty() {
            return Err(TargetError::Errno(14)); // EFAULT
        }
        // Show the original bytes under planted breakpoints.
        let end = start.wrapping_add(n as u64);
        for (&va, p) in self.bps.planted() {
            if va >= start
                && va < end
                && translate(&self.mem, cr3, va).is_some_and(|t| t.gpa == p.gpa)
            {
                data[(va - start) as usize] = p.orig;
            }
        }
        Ok(n)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        let cr3 = self.cpu.sregs.cr3;
        let mem = &self.mem;
        if !write_virt(mem, cr3, start, data) {
            return Err(TargetError::Errno(14));
        }
        // A write over a planted breakpoint changes what it restores.
        let end = start.wrapping_add(data.len() as u64);
        for (&va, p) in self.bps.kernel.iter_mut().chain(self.bps.armed.iter_mut()) {
            if va >= start && va < end && translate(mem, cr3, va).is_some_and(|t| t.gpa == p.gpa) {
                p.orig = data[(va - start) as usize];
                let _ = plant(mem, cr3, va);
            }
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for Stopped {
    fn resume(&mut self, signal: Option<Signal>) -> Result<(), Self::Error> {
        if let Some(sig) = signal {
            log::info!("gdb: continuing without delivering signal {sig}");
        }
        self.resume = Some(Resume::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for Stopped {
    fn step(&mut self, signal: Option<Signal>) -> Result<(), Self::Error> {
        if let Some(sig) = signal {
            log::info!("gdb: stepping without delivering signal {sig}");
        }
        self.resume = Some(Resume::Step);
        Ok(())
    }
}

impl Breakpoints for Stopped {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for Stopped {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let cr3 = self.cpu.sregs.cr3;
        if self.in_kernel_text(addr) {
            if self.bps.kernel.contains_key(&addr) {
                return Ok(true);
            }
            let Some(p) = plant(&self.mem, self.kernel_cr3, addr) else {
                return Ok(false);
            };
            self.bps.kernel.insert(addr, p);
            return Ok(true);
        }
        self.bps.process.insert(addr);
        if self.cpu.in_process && !self.bps.armed.contains_key(&addr) {
            if let Some(p) = plant(&self.mem, cr3, addr) {
                self.bps.armed.insert(addr, p);
            }
        }
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let mut found = false;
        if let Some(p) = self.bps.kernel.remove(&addr) {
            lift(&self.mem, &p);
            found = true;
        }
        if self.bps.process.remove(&addr) {
            found = true;
        }
        if let Some(p) = self.bps.armed.remove(&addr) {
            lift(&self.mem, &p);
        }
        Ok(found)
    }
}
