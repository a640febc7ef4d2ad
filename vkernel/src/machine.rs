//! The run loop: `KVM_RUN`, then a `match` on why the vCPU stopped,
//! dispatching to small handlers. The host always knows which context is on
//! the vCPU (the guest kernel, or the process of one vmspace) and
//! interprets every exit by it, never by what the guest claims.

use kvm_bindings::{kvm_regs, kvm_sregs};
use kvm_ioctls::{SyncReg, VcpuExit};
use vkernel_abi::frame::{
    trapno_for_vector, vector_has_error_code, T_PAGEFLT, T_PROTFLT, T_TIMEOUT,
};
use vkernel_abi::{
    layout, selector, Errno, Hypercall, HypercallBlock, Pod, TrapFrame, VextFrame, HC_PORT_BASE,
    HC_PORT_COUNT, SYSCALL_PORT, TRAP_PORT_BASE, VMSPACE_CTL_RUN,
};
use vm_memory::{Bytes, GuestAddress};
use vmspace::FaultOutcome;

use crate::crash;
use crate::error::Error;
use crate::fpu::FpuStates;
use crate::gdb;
use crate::hypercall::{self, Flow, Hypercalls};
use crate::process;
use crate::slice_timer::SliceTimer;
use crate::trap_area;
use crate::vm::{self, Vm};
use crate::vmspace_calls;

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The guest kernel called exit with this status.
    Exited(i32),
    /// The host stopped the guest (crash, triple fault, protocol
    /// violation); the report was printed on stderr.
    Stopped,
}

/// Why `KVM_RUN` returned, copied out of `kvm_run` so handlers may borrow
/// the vCPU again.
#[derive(Debug)]
enum Exit {
    Out { port: u16, len: usize, value: u32 },
    In { port: u16 },
    Mmio { addr: u64, write: bool },
    Shutdown,
    InternalError,
    FailEntry(u64),
    Interrupted,
    Other(String),
}

/// A process on the vCPU: what `vmspace_ctl(RUN)` must give back when it
/// traps.
pub(crate) struct Running {
    id: u64,
    /// Guest-physical addresses of the caller's frames and hypercall block.
    tframe: u64,
    vframe: u64,
    block: u64,
    /// The guest kernel's context, RIP already past its `out`.
    pub(crate) kernel_regs: kvm_regs,
    kernel_sregs: kvm_sregs,
}

/// The hardware exception frame the CPU pushed on the trap stack.
struct HwFrame {
    err: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// The VM and everything the run loop needs.
pub struct Machine {
    pub(crate) vm: Vm,
    hypercalls: Hypercalls,
    fpu: FpuStates,
    timer: SliceTimer,
    pub(crate) running: Option<Running>,
    /// The running process's time slice expired while an exception was on
    /// its way to the host; the next trap ends the slice.
    slice_over: bool,
    /// The debugger, with `--gdb` (see `gdb/mod.rs`).
    pub(crate) gdb: Option<Box<gdb::Gdb>>,
    /// Counters for `--stats` and the benchmarks.
    pub stats: Stats,
}

/// What the run loop counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// VM exits taken.
    pub exits: u64,
    /// Hypercalls carried out.
    pub hypercalls: u64,
    /// Process page faults resolved by the host without the guest kernel.
    pub faults_resolved: u64,
    /// Traps returned to the guest kernel through ctl(RUN).
    pub traps_delivered: u64,
    /// Times cached guest translations were dropped.
    pub translation_flushes: u64,
}

impl Machine {
    /// A machine ready to run (the vCPU already at the kernel's entry).
    pub fn new(mut vm: Vm) -> Result<Self, Error> {
        let fpu = FpuStates::new(&vm.vcpu)?;
        let immediate_exit = &mut vm.vcpu.get_kvm_run().immediate_exit as *mut u8;
        let timer = SliceTimer::new(immediate_exit)
            .map_err(|e| Error::Setup(format!("creating the time-slice timer: {e}")))?;
        Ok(Machine {
            vm,
            hypercalls: Hypercalls::new()
                .map_err(|e| Error::Setup(format!("console input: {e}")))?,
            fpu,
            timer,
            running: None,
            slice_over: false,
            gdb: None,
            stats: Stats::default(),
        })
    }

    fn run_vcpu(&mut self) -> Result<Exit, Error> {
        self.stats.exits += 1;
        Ok(match self.vm.vcpu.run() {
            Ok(VcpuExit::IoOut(port, data)) => {
                let mut v = [0u8; 4];
                let n = data.len().min(4);
                v[..n].copy_from_slice(&data[..n]);
                Exit::Out {
                    port,
                    len: data.len(),
                    value: u32::from_le_bytes(v),
                }
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                data.fill(0xff);
                Exit::In { port }
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                data.fill(0xff);
                Exit::Mmio { addr, write: false }
            }
            Ok(VcpuExit::MmioWrite(addr, _)) => Exit::Mmio { addr, write: true },
            Ok(VcpuExit::Shutdown) => Exit::Shutdown,
            Ok(VcpuExit::InternalError) => Exit::InternalError,
            Ok(VcpuExit::FailEntry(reason, _)) => Exit::FailEntry(reason),
            Ok(VcpuExit::Intr) => Exit::Interrupted,
            Ok(other) => Exit::Other(format!("{other:?}")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                self.vm.vcpu.set_kvm_immediate_exit(0);
                Exit::Interrupted
            }
            Err(e) => {
                return Err(Error::Kvm {
                    what: "KVM_RUN",
                    source: e,
                })
            }
        })
    }

    /// Debugs the guest with `gdb` from its first instruction on.
    pub fn attach_gdb(&mut self, gdb: gdb::Gdb) {
        self.gdb = Some(Box::new(gdb));
    }

    /// The registers `Vm::enter_kernel` set, read once by ioctl: the synced
    /// copy is filled only by the first `KVM_RUN`.
    pub(crate) fn initial_registers(&self) -> Result<(kvm_regs, kvm_sregs), Error> {
        let regs = self
            .vm
            .vcpu
            .get_regs()
            .map_err(crate::error::kvm_err("KVM_GET_REGS"))?;
        let sregs = self
            .vm
            .vcpu
            .get_sregs()
            .map_err(crate::error::kvm_err("KVM_GET_SREGS"))?;
        Ok((regs, sregs))
    }

    /// Runs the guest until it exits or is stopped.
    pub fn run(&mut self) -> Result<Outcome, Error> {
        if self.gdb.is_some() && gdb::first_stop(self).is_err() {
            return Ok(Outcome::Stopped);
        }
        loop {
            let exit = self.run_vcpu()?;
            log::trace!("exit: {exit:?}");
            let flow = match exit {
                Exit::Out { port, len, value } => self.on_out(port, len, value)?,
                Exit::Interrupted => self.on_interrupted(),
                Exit::In { port } => Err(format!("guest executed `in` from port {port:#x}; no port is readable")),
                Exit::Mmio { addr, write } => Err(format!(
                    "guest {} guest-physical address {addr:#x}, where there is no memory",
                    if write { "wrote" } else { "read" }
                )),
                Exit::Shutdown => Err("triple fault (KVM_EXIT_SHUTDOWN): an exception occurred while delivering an exception".into()),
                Exit::InternalError => {
                    // SAFETY: KVM filled the `internal` member for this exit reason.
                    let sub = unsafe { self.vm.vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
                    Err(format!("KVM internal error (suberror {sub}): the instruction could not be emulated"))
                }
                Exit::FailEntry(reason) => Err(format!("KVM could not enter the guest (hardware reason {reason:#x})")),
                Exit::Other(what) => Err(format!("unexpected exit from KVM_RUN: {what}")),
            };
            let flow = match flow {
                Ok(Flow::Resume) if self.gdb.is_some() => gdb::after_exit(self),
                flow => flow,
            };
            match flow {
                Ok(Flow::Resume) => {}
                Ok(Flow::Exit(status)) => {
                    if self.gdb.is_some() {
                        gdb::exited(self, status);
                    }
                    return Ok(Outcome::Exited(status));
                }
                Err(report) => {
                    let report = match &self.running {
                        Some(r) if !report.is_empty() => {
                            format!("{report} (while running vmspace {:#x})", r.id)
                        }
                        _ => report,
                    };
                    self.report(&report, None);
                    if self.gdb.is_some() {
                        gdb::terminated(self);
                    }
                    return Ok(Outcome::Stopped);
                }
            }
        }
    }

    fn on_out(&mut self, port: u16, len: usize, value: u32) -> Result<Result<Flow, String>, Error> {
        if (TRAP_PORT_BASE..TRAP_PORT_BASE + trap_area::VECTORS as u16).contains(&port) {
            let vector = (port - TRAP_PORT_BASE) as u8;
            return self.on_exception(vector);
        }
        if self.running.is_some() {
            // Only the syscall port is open to a process.
            if port == SYSCALL_PORT {
                return self.on_syscall();
            }
            return Ok(Err(format!(
                "process wrote to I/O port {port:#x}, which its I/O bitmap closes"
            )));
        }
        if (HC_PORT_BASE..HC_PORT_BASE + HC_PORT_COUNT).contains(&port) {
            let flow = self.on_hypercall(port, len, value);
            if self.gdb.is_some() {
                gdb::hypercall_done(self);
            }
            return flow;
        }
        Ok(Err(format!(
            "guest kernel wrote to I/O port {port:#x}, which is not a hypercall port"
        )))
    }

    fn on_hypercall(
        &mut self,
        port: u16,
        len: usize,
        value: u32,
    ) -> Result<Result<Flow, String>, Error> {
        self.stats.hypercalls += 1;
        let nr = port - HC_PORT_BASE;
        if len != 4 {
            return Ok(Err(
                hypercall::ProtocolError::BadWidth { port, len }.to_string()
            ));
        }
        let addr = value as u64;
        let block = match hypercall::read_block(&self.vm.mem, self.vm.ram_bytes, port, nr, addr) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let pool_pages = self.vm.registry.pages_in_use() as u64;
        let (result, flow) =
            match self
                .hypercalls
                .basic(&self.vm.mem, self.vm.ram_bytes, pool_pages, nr, &block)
            {
                Some(done) => done,
                None => match Hypercall::from_nr(nr) {
                    Some(Hypercall::VmspaceCtl) => match self.ctl(addr, &block)? {
                        // Entered the process: the result is written when it traps.
                        Ok(()) => return Ok(Ok(Flow::Resume)),
                        Err(e) => (Err(e), Flow::Resume),
                    },
                    Some(hc) => (
                        vmspace_calls::dispatch(
                            hc,
                            &block,
                            &mut self.vm.registry,
                            &mut self.fpu,
                            &self.vm.vcpu,
                        ),
                        Flow::Resume,
                    ),
                    None => (Err(Errno::ENOSYS), Flow::Resume),
                },
            };
        hypercall::write_result(&self.vm.mem, addr, result);
        Ok(Ok(flow))
    }

    /// Reads a `T` at guest-physical `addr`, which must lie in kernel RAM.
    fn read_ram<T: Pod>(&self, addr: u64) -> Result<T, Errno> {
        let size = std::mem::size_of::<T>() as u64;
        if addr
            .checked_add(size)
            .is_none_or(|end| end > self.vm.ram_bytes)
        {
            return Err(Errno::EFAULT);
        }
        let mut v = T::default();
        self.vm
            .mem
            .read_slice(v.as_bytes_mut(), GuestAddress(addr))
            .map_err(|_| Errno::EFAULT)?;
        Ok(v)
    }

    /// `vmspace_ctl(id, cmd, tframe, vframe, timeout_us)`: the seed's checks
    /// in the seed's order, then the switch to the process.
    fn ctl(&mut self, block_addr: u64, b: &HypercallBlock) -> Result<Result<(), Errno>, Error> {
        let [id, cmd, tframe, vframe, timeout_us, ..] = b.args;
        if !self.vm.registry.contains(id) {
            return Ok(Err(Errno::ENOENT));
        }
        if cmd != VMSPACE_CTL_RUN {
            return Ok(Err(Errno::EOPNOTSUPP));
        }
        let tf: TrapFrame = match self.read_ram(tframe) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let vf: VextFrame = match self.read_ram(vframe) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = process::check_frame(&tf, &vf) {
            return Ok(Err(e));
        }
        let cr3 = match self.vm.registry.acquire_for_run(id) {
            Ok(cr3) => cr3,
            Err(e) => return Ok(Err(e)),
        };
        if self.vm.registry.take_translation_reduced() {
            self.flush_translations()?;
        }
        self.fpu.switch_to(&self.vm.vcpu, id)?;

        // Save the kernel's context. Its RIP is on the `out dx, eax` (one
        // byte, 0xef) that made this hypercall; resume past it.
        let sync = self.vm.vcpu.sync_regs();
        let mut kernel_regs = sync.regs;
        let mut opcode = [0u8; 1];
        if self
            .vm
            .mem
            .read_slice(&mut opcode, GuestAddress(kernel_regs.rip))
            .is_ok()
            && opcode[0] == 0xef
        {
            kernel_regs.rip += 1;
        }
        let kernel_sregs = sync.sregs;

        let mut sregs = kernel_sregs;
        vm::set_tr(&mut sregs, selector::TSS_PROCESS);
        sregs.cr3 = cr3;
        sregs.fs.base = vf.tls[0].base;
        sregs.gs.base = vf.tls[1].base;
        self.load_context(process::regs_from_frame(&tf), sregs);
        self.running = Some(Running {
            id,
            tframe,
            vframe,
            block: block_addr,
            kernel_regs,
            kernel_sregs,
        });
        if self.gdb.is_some() {
            gdb::entered_process(self);
        }
        self.timer.arm(timeout_us);
        Ok(Ok(()))
    }

    /// Installs a whole register context for the next `KVM_RUN` through the
    /// synced registers (no extra ioctl).
    pub(crate) fn load_context(&mut self, regs: kvm_regs, mut sregs: kvm_sregs) {
        vm::set_tr_type(&mut sregs); // KVM on AMD reads TR back as busy
        let s = self.vm.vcpu.sync_regs_mut();
        s.regs = regs;
        s.sregs = sregs;
        self.vm.vcpu.set_sync_dirty_reg(SyncReg::Register);
        self.vm.vcpu.set_sync_dirty_reg(SyncReg::SystemRegister);
    }

    /// Gives the trap frame to the guest kernel and puts it back on the
    /// vCPU: `vmspace_ctl` returns 0 (the seed's vkernel_trap).
    fn leave_process(&mut self, mut tf: TrapFrame) -> Result<Flow, String> {
        if self.gdb.is_some() && self.running.is_some() {
            gdb::leaving_process(self, &mut tf);
        }
        let Some(r) = self.running.take() else {
            return Err("a process trapped, but none was running".into());
        };
        self.timer.disarm();
        self.slice_over = false;
        self.stats.traps_delivered += 1;
        let vf = process::vext_from_sregs(&self.vm.vcpu.sync_regs().sregs);
        // Both addresses were checked inside RAM when ctl read them.
        let _ = self
            .vm
            .mem
            .write_slice(tf.as_bytes(), GuestAddress(r.tframe));
        let _ = self
            .vm
            .mem
            .write_slice(vf.as_bytes(), GuestAddress(r.vframe));
        hypercall::write_result(&self.vm.mem, r.block, Ok(0));
        let _ = self.vm.registry.release(r.id);
        self.load_context(r.kernel_regs, r.kernel_sregs);
        Ok(Flow::Resume)
    }

    /// Whether KVM holds an exception raised but not yet delivered (one
    /// ioctl; only asked on the rare timer-expiry path).
    fn exception_pending(&self) -> bool {
        match self.vm.vcpu.get_vcpu_events() {
            Ok(ev) => {
                ev.exception.injected != 0 || ev.exception.pending != 0 || ev.nmi.injected != 0
            }
            // Cannot tell: end the slice now, as without the check.
            Err(_) => false,
        }
    }

    /// The vCPU was interrupted by the slice timer (or a stray signal).
    fn on_interrupted(&mut self) -> Result<Flow, String> {
        if self.running.is_none() {
            return Ok(Flow::Resume); // a late timer while the kernel runs: ignore
        }
        if self.gdb.is_some() && !self.timer.expired() {
            // The debugger's kick (maybe one that raced with a stop), not
            // the time slice.
            return Ok(Flow::Resume);
        }
        let sync = self.vm.vcpu.sync_regs();
        if sync.sregs.cs.selector & 3 == 0 {
            // Interrupted between an exception's delivery and its stub's
            // `out`: let the stub run and report the exception.
            self.slice_over = true;
            return Ok(Flow::Resume);
        }
        if self.exception_pending() {
            // Interrupted after the process raised an exception but before
            // KVM delivered it. KVM keeps it queued across the exit: were
            // the kernel put on the vCPU now, it would receive the process's
            // exception. Let it be delivered; the stub reports it, and the
            // slice ends there even if the host resolves the fault.
            self.slice_over = true;
            return Ok(Flow::Resume);
        }
        let tf = if sync.regs.rip == layout::SYSCALL_STUB_ADDR {
            // The slice ended after the process's `syscall` but before the
            // stub's `out`: the system call was made, so report it as one.
            // (A timeout frame would carry a rip inside the trap area,
            // which ctl then rightly refuses to resume.)
            process::syscall_frame(&sync.regs)
        } else {
            let mut tf = process::frame_from_regs(&sync.regs);
            tf.trapno = T_TIMEOUT;
            tf
        };
        self.leave_process(tf)
    }

    /// The process executed `syscall`, which landed on the stub page and its
    /// `out`. RCX/R11 hold the return RIP and RFLAGS, as on Linux.
    fn on_syscall(&mut self) -> Result<Result<Flow, String>, Error> {
        let sync = self.vm.vcpu.sync_regs();
        let rip = sync.regs.rip;
        let tf = if rip == layout::SYSCALL_STUB_ADDR
            || rip == layout::SYSCALL_STUB_ADDR + trap_area::STUB_OUT_LEN
        {
            process::syscall_frame(&sync.regs)
        } else {
            // The process ran an `out` to the syscall port by itself: the
            // port is open to it, but only the stub's `out` is a system call.
            let mut tf = process::frame_from_regs(&sync.regs);
            tf.trapno = T_PROTFLT;
            tf
        };
        Ok(self.leave_process(tf))
    }

    /// Reads the exception frame the CPU pushed for `vector`.
    fn hw_frame(&self, vector: u8) -> Option<HwFrame> {
        let mut raw = [0u8; 48];
        let has_err = vector_has_error_code(vector);
        let len = if has_err { 48 } else { 40 };
        if !self
            .vm
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
    fn on_exception(&mut self, vector: u8) -> Result<Result<Flow, String>, Error> {
        let sync = self.vm.vcpu.sync_regs();
        // The emulator runs ring-0 code here and has completed the `out` by
        // the time we see it (RIP past it); fast-path KVM leaves RIP on it.
        let stub = trap_area::stub_addr(vector);
        if sync.sregs.cs.selector & 3 != 0
            || (sync.regs.rip != stub && sync.regs.rip != stub + trap_area::STUB_OUT_LEN)
        {
            return Ok(Err(format!(
                "exception port for vector {vector} written from rip {:#x}, cs {:#x}: not the trap stub",
                sync.regs.rip, sync.sregs.cs.selector
            )));
        }
        let Some(mut hw) = self.hw_frame(vector) else {
            return Ok(Err(format!(
                "cannot read the exception frame for vector {vector}"
            )));
        };
        let mut regs = sync.regs;
        regs.rip = hw.rip;
        regs.rflags = hw.rflags;
        regs.rsp = hw.rsp;
        if (vector == 1 || vector == 3) && self.gdb.is_some() {
            let sregs = sync.sregs;
            if let Some(flow) = gdb::debug_trap(self, vector, regs, sregs) {
                return Ok(flow);
            }
        }
        let sync = self.vm.vcpu.sync_regs();
        let Some(r) = &self.running else {
            self.kernel_crash(vector, &hw, regs, sync.sregs);
            return Ok(Err(String::new()));
        };
        let id = r.id;
        let (user_cs, user_ss) = (r.kernel_sregs.cs, r.kernel_sregs.ss);
        if vector == 14 {
            let cr2 = sync.sregs.cr2;
            let outcome = self.vm.registry.handle_fault(id, cr2, hw.err);
            if let Ok(FaultOutcome::DeliverWith { error_code }) = outcome {
                // The guest's own tables refused it (MAP_VPAGETABLE): the
                // error code is the one they give, not the shadow's.
                hw.err = error_code;
            }
            if let Ok(FaultOutcome::Resolved) = outcome {
                self.stats.faults_resolved += 1;
                if self.vm.registry.take_translation_reduced() {
                    self.flush_translations()?;
                }
                if self.slice_over {
                    // The time slice ended while the fault was on its way:
                    // give the kernel its timeout; the process re-runs the
                    // instruction, now mapped, when it is next scheduled.
                    let mut tf = process::frame_from_regs(&regs);
                    tf.trapno = T_TIMEOUT;
                    return Ok(self.leave_process(tf));
                }
                // Resume the process where it faulted, as `iretq` would.
                let mut sregs = sync.sregs;
                sregs.cs = user_cs;
                sregs.ss = user_ss;
                self.load_context(regs, sregs);
                if self.gdb.is_some() {
                    gdb::arm_process(self); // breakpoints on the new page
                }
                return Ok(Ok(Flow::Resume));
            }
        }
        let mut tf = process::frame_from_regs(&regs);
        tf.trapno = trapno_for_vector(vector);
        tf.err = hw.err;
        if vector == 14 {
            tf.trapno = T_PAGEFLT;
            tf.addr = sync.sregs.cr2;
        }
        Ok(self.leave_process(tf))
    }

    fn kernel_crash(&mut self, vector: u8, hw: &HwFrame, regs: kvm_regs, mut sregs: kvm_sregs) {
        let mut what = format!(
            "guest kernel crashed: {} (vector {vector}) at rip {:#x}",
            crash::vector_name(vector),
            hw.rip
        );
        if vector_has_error_code(vector) {
            what.push_str(&format!(", error code {:#x}", hw.err));
            if vector == 14 {
                what.push_str(&format!(
                    "\n  fault address (cr2) {:#x}: {}",
                    sregs.cr2,
                    crash::page_fault_reason(hw.err)
                ));
            }
        }
        if hw.rip >= layout::TRAP_AREA_BASE {
            what.push_str("\n  (the fault is inside the trap area)");
        }
        // The interrupted context is in the hardware frame; the synced
        // registers hold the stub's view (ring 0, trap stack).
        sregs.cs.selector = hw.cs as u16;
        sregs.ss.selector = hw.ss as u16;
        self.report(&what, Some((regs, sregs)));
        if self.gdb.is_some() {
            gdb::crashed(self, vector, regs, sregs); // let gdb look first
        }
    }

    /// KVM on these machines shadows guest page tables and trusts its
    /// write-protection to see every change; the host's own writes to a
    /// vmspace's tables bypass that, so after a translation was removed or
    /// reduced, the shadow state is dropped before the process runs again.
    fn flush_translations(&mut self) -> Result<(), Error> {
        self.stats.translation_flushes += 1;
        self.vm.drop_shadow_translations()
    }

    /// Prints a report with the registers (given, or as KVM has them).
    fn report(&mut self, what: &str, regs: Option<(kvm_regs, kvm_sregs)>) {
        if what.is_empty() {
            return; // already reported
        }
        let sync = self.vm.vcpu.sync_regs();
        let (regs, sregs) = regs.unwrap_or((sync.regs, sync.sregs));
        eprintln!("vkernel: {what}");
        eprint!("{}", crash::format_registers(&regs, &sregs));
    }

    /// The VM (for teardown and stats).
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.vm
    }
}
