//! The run loop: `KVM_RUN`, then a `match` on why the vCPU stopped,
//! dispatching to small handlers. The host always knows which context is on
//! the vCPU (the guest kernel, or the process of one vmspace) and
//! interprets every exit by it, never by what the guest claims.
//!
//! Where things are: this file is the loop and the stop reasons; the
//! hypercalls are dispatched in `hypercall.rs`; `switch.rs` moves the
//! vCPU between the kernel and a process (ctl RUN, system calls,
//! exceptions, the time slice); `crash.rs` writes the reports. An observer
//! (the gdb stub) hooks in through [`RunHooks`] and sees the vCPU only
//! through [`VcpuAccess`].

pub(crate) mod switch;
#[cfg(test)]
mod tests;

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use vkernel_abi::{HC_PORT_BASE, HC_PORT_COUNT, SYSCALL_PORT, TRAP_PORT_BASE};
use vm_memory::GuestMemoryMmap;

use crate::clock::{ClockPublisher, ClockSource};
use crate::crash::{self, KernelCrash};
use crate::error::Error;
use crate::hooks::{RunHooks, VcpuAccess};
use crate::hypercall::{Hypercalls, ProtocolError};
use crate::slice_timer::SliceTimer;
use crate::trap_area;
use crate::vcpu::{Exit, KvmVcpu, Vcpu};
use crate::vm::{Guest, Vm};

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The guest kernel called exit with this status.
    Exited(i32),
    /// The host stopped the guest (crash, triple fault, protocol
    /// violation); the report was printed on stderr.
    Stopped,
}

/// Why the run loop does not simply resume the guest after an exit.
#[derive(Debug)]
pub enum Stop {
    /// The guest kernel called `exit(status)`.
    Exit(i32),
    /// The guest did something the host will not carry out; reported with
    /// the registers of the context on the vCPU.
    Violation(Violation),
    /// The guest kernel took an exception.
    Crash(Box<KernelCrash>),
    /// The debugger killed the guest.
    Killed,
    /// A host facility failed (a KVM ioctl): the run ends with this error.
    Host(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Host(e)
    }
}

impl From<Violation> for Stop {
    fn from(v: Violation) -> Self {
        Stop::Violation(v)
    }
}

impl From<ProtocolError> for Stop {
    fn from(e: ProtocolError) -> Self {
        Stop::Violation(Violation::Protocol(e))
    }
}

/// What a handler returns: `Ok` resumes the guest.
pub type Handled = Result<(), Stop>;

/// Something the guest did that stops it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// `in` from any port.
    #[error("guest executed `in` from port {port:#x}; no port is readable")]
    InPort {
        /// The port.
        port: u16,
    },
    /// An access where there is no memory.
    #[error("guest {} guest-physical address {addr:#x}, where there is no memory", if *write { "wrote" } else { "read" })]
    Mmio {
        /// The address.
        addr: u64,
        /// A write, else a read.
        write: bool,
    },
    /// Triple fault.
    #[error(
        "triple fault (KVM_EXIT_SHUTDOWN): an exception occurred while delivering an exception"
    )]
    TripleFault,
    /// KVM could not emulate an instruction.
    #[error("KVM internal error (suberror {suberror}): the instruction could not be emulated")]
    InternalError {
        /// KVM's suberror.
        suberror: u32,
    },
    /// KVM could not enter the guest.
    #[error("KVM could not enter the guest (hardware reason {reason:#x})")]
    FailEntry {
        /// The hardware's reason.
        reason: u64,
    },
    /// An exit the loop does not expect.
    #[error("unexpected exit from KVM_RUN: {0}")]
    UnexpectedExit(String),
    /// The guest kernel wrote to a port that is no hypercall.
    #[error("guest kernel wrote to I/O port {port:#x}, which is not a hypercall port")]
    KernelPort {
        /// The port.
        port: u16,
    },
    /// A hypercall the host cannot carry out.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// An exception port written by something other than its ring-0 stub.
    #[error("exception port for vector {vector} written from rip {rip:#x}, cs {cs:#x}: not the trap stub")]
    NotTrapStub {
        /// The vector the port stands for.
        vector: u8,
        /// Where the `out` was.
        rip: u64,
        /// Code segment selector at the `out`.
        cs: u16,
    },
    /// The hardware frame of an exception could not be read.
    #[error("cannot read the exception frame for vector {vector}")]
    NoExceptionFrame {
        /// The vector.
        vector: u8,
    },
    /// A process trap arrived with no process running.
    #[error("a process trapped, but none was running")]
    TrapWithoutProcess,
}

/// An exit a process made that the protocol does not expect of it: the
/// process's fault, delivered to the guest kernel as `T_PROTFLT` (the
/// process gets SIGSEGV, as for a #GP), never a stop of the VM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessFault {
    /// `in` or `ins` (the syscall port its I/O bitmap opens is write-only).
    #[error("`in` from port {port:#x}")]
    In {
        /// The port.
        port: u16,
    },
    /// An `out` other than the stub's: another port, another width, or a
    /// string `outs`.
    #[error("{len}-byte `out` to port {port:#x}")]
    Out {
        /// The port.
        port: u16,
        /// Access width in bytes.
        len: usize,
    },
    /// The stub's port written by the process's own `out`.
    #[error("`out` to the syscall port from rip {rip:#x}, not the syscall stub")]
    NotStub {
        /// Where the `out` was.
        rip: u64,
    },
    /// An exception port written from ring 3.
    #[error("`out` to the exception port of vector {vector} from ring 3")]
    TrapPort {
        /// The vector the port stands for.
        vector: u8,
    },
    /// An access to guest-physical memory with no slot behind it.
    #[error("{} guest-physical address {addr:#x}, where there is no memory", if *write { "wrote" } else { "read" })]
    Mmio {
        /// The address.
        addr: u64,
        /// A write, else a read.
        write: bool,
    },
    /// KVM could not emulate the process's instruction.
    #[error("KVM internal error (suberror {suberror})")]
    Internal {
        /// KVM's suberror.
        suberror: u32,
    },
    /// KVM could not enter the process's context.
    #[error("KVM could not enter the process (hardware reason {reason:#x})")]
    FailEntry {
        /// The hardware's reason.
        reason: u64,
    },
    /// Any other exit (a `hlt` that reached the host, ...).
    #[error("unexpected exit {0}")]
    Other(String),
}

/// A process on the vCPU: what `vmspace_ctl(RUN)` must give back when it
/// traps.
pub(crate) struct Running {
    pub(crate) id: u64,
    /// Guest-physical addresses of the caller's frames and hypercall block.
    pub(crate) tframe: u64,
    pub(crate) vframe: u64,
    pub(crate) block: u64,
    /// The guest kernel's context, RIP already past its `out`.
    pub(crate) kernel_regs: kvm_regs,
    pub(crate) kernel_sregs: kvm_sregs,
}

/// The vCPU, the guest's memory and everything the run loop needs.
///
/// Field order is drop order: the hooks (the debugger's watcher thread
/// sends the slice signal) and the slice timer (its handler writes into
/// the vCPU's `kvm_run`) go before the vCPU, and the vCPU (the VM's memory
/// slots) before the memory.
pub struct Machine<V: Vcpu = KvmVcpu> {
    hooks: Option<Box<dyn RunHooks>>,
    pub(crate) timer: SliceTimer,
    pub(crate) vcpu: V,
    pub(crate) guest: Guest,
    pub(crate) hypercalls: Hypercalls,
    /// The clock page's publisher (disabled until [`Machine::set_clock`]).
    pub(crate) clock: ClockPublisher,
    pub(crate) running: Option<Running>,
    /// The running process's time slice expired while an exception was on
    /// its way to the host; the next trap ends the slice.
    pub(crate) slice_over: bool,
    /// The process instruction (rip) whose emulation KVM gave up on once
    /// and that is being run again after the shadow was dropped.
    pub(crate) emulation_retry: Option<u64>,
    /// The hypercall that first asked for the pending translation flush
    /// (for [`Stats::flushes_by_nr`]).
    pub(crate) flush_asker: Option<u16>,
    /// When the last `KVM_RUN` returned: the one clock read of an exit's
    /// handling (stats, the clock page's age, the slice timer).
    pub(crate) exited_at: std::time::Instant,
    /// Counters for `--stats` and the benchmarks.
    pub stats: Stats,
}

/// What the run loop counted.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// VM exits taken.
    pub exits: u64,
    /// Hypercalls carried out (one exit each).
    pub hypercalls: u64,
    /// Calls carried out inside `batch`/`vmspace_ctl_batch` (no exit of
    /// their own; also in `hypercalls_by_nr`, and their time in the
    /// batch's as well as their own).
    pub batched: u64,
    /// Process page faults resolved by the host without the guest kernel.
    pub faults_resolved: u64,
    /// Traps returned to the guest kernel through ctl(RUN).
    pub traps_delivered: u64,
    /// Times cached guest translations were dropped.
    pub translation_flushes: u64,
    /// Exits a process made that the protocol does not expect, delivered
    /// to the guest kernel as `T_PROTFLT`.
    pub process_faults: u64,
    /// Hypercalls carried out, by number (`--stats` lists them: where the
    /// exits of a workload go).
    pub hypercalls_by_nr: [u64; HC_PORT_COUNT as usize],
    /// Translation flushes that hypercall number asked for (the call that
    /// reduced a translation or freed a table page); the last slot counts
    /// those asked for elsewhere (faults, emulation retries).
    pub flushes_by_nr: [u64; HC_PORT_COUNT as usize + 1],
    /// Traps delivered to the guest kernel, by kind: system calls, page
    /// faults, time-slice ends, others.
    pub traps_by_kind: [u64; 4],
    /// Nanoseconds inside `KVM_RUN` (the guest's own work, KVM's in-kernel
    /// exits and the entry and exit themselves).
    pub run_ns: u64,
    /// Nanoseconds the host spent carrying out each hypercall.
    pub hypercall_ns_by_nr: [u64; HC_PORT_COUNT as usize],
    /// Nanoseconds spent dropping KVM's translations.
    pub flush_ns: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            exits: 0,
            hypercalls: 0,
            batched: 0,
            faults_resolved: 0,
            traps_delivered: 0,
            translation_flushes: 0,
            process_faults: 0,
            hypercalls_by_nr: [0; HC_PORT_COUNT as usize],
            flushes_by_nr: [0; HC_PORT_COUNT as usize + 1],
            traps_by_kind: [0; 4],
            run_ns: 0,
            hypercall_ns_by_nr: [0; HC_PORT_COUNT as usize],
            flush_ns: 0,
        }
    }
}

impl Stats {
    /// The per-call and per-trap counts as one line for `--stats`:
    /// `name count` pairs of the calls made, the flushes each asked for,
    /// and the traps by kind.
    pub fn breakdown(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "{} ms in KVM_RUN, {} ms flushing; hypercalls by call (count, host ms):",
            self.run_ns / 1_000_000,
            self.flush_ns / 1_000_000
        );
        for (nr, &n) in self.hypercalls_by_nr.iter().enumerate() {
            if n > 0 {
                let ms = self.hypercall_ns_by_nr[nr] as f64 / 1e6;
                let _ = write!(out, " {} {n} {ms:.1}", crate::hypercall::name(nr as u16));
            }
        }
        let _ = write!(out, " ({} of them batched)", self.batched);
        out.push_str("; flushes asked by:");
        for (nr, &n) in self.flushes_by_nr.iter().enumerate() {
            if n > 0 {
                if nr == HC_PORT_COUNT as usize {
                    let _ = write!(out, " other {n}");
                } else {
                    let _ = write!(out, " {} {n}", crate::hypercall::name(nr as u16));
                }
            }
        }
        let [sys, pf, timeout, other] = self.traps_by_kind;
        let _ = write!(
            out,
            "; traps: {sys} system calls, {pf} page faults, {timeout} slice ends, {other} other"
        );
        out
    }
}

impl Machine<KvmVcpu> {
    /// A machine ready to run (the vCPU already at the kernel's entry).
    pub fn new(vm: Vm) -> Result<Self, Error> {
        Machine::with_vcpu(vm.vcpu, vm.guest)
    }
}

impl<V: Vcpu> Machine<V> {
    /// A machine running `vcpu` over `guest`. Call on the thread that runs
    /// the vCPU (the slice timer signals it).
    pub fn with_vcpu(mut vcpu: V, guest: Guest) -> Result<Self, Error> {
        let timer = SliceTimer::new(vcpu.immediate_exit()).map_err(|source| Error::Io {
            what: "creating the time-slice timer",
            source,
        })?;
        let hypercalls = Hypercalls::new().map_err(|source| Error::Io {
            what: "console input",
            source,
        })?;
        let clock = ClockPublisher::new(&vcpu, ClockSource::Hypercall, crate::host_start());
        Ok(Machine {
            hooks: None,
            timer,
            vcpu,
            guest,
            hypercalls,
            clock,
            running: None,
            slice_over: false,
            emulation_retry: None,
            flush_asker: None,
            exited_at: std::time::Instant::now(),
            stats: Stats::default(),
        })
    }

    /// Publishes the guest's clock from `source` (call before the sandbox
    /// goes on: KVM_GET_TSC_KHZ is not allowed after).
    pub fn set_clock(&mut self, source: ClockSource) {
        self.clock = ClockPublisher::new(&self.vcpu, source, crate::host_start());
        self.clock
            .refresh(&self.vcpu, &self.guest.ram, true, std::time::Instant::now());
    }

    /// Installs the run loop's observer (the debugger).
    pub fn set_hooks(&mut self, hooks: Box<dyn RunHooks>) {
        self.hooks = Some(hooks);
    }

    /// The served host directories (for `--stats`).
    pub fn hostfs(&self) -> &crate::hostfs::HostFs {
        &self.hypercalls.hostfs
    }

    /// Serves host directories to the guest (`hostfs_*` hypercalls).
    pub fn set_hostfs(&mut self, hostfs: crate::hostfs::HostFs) {
        self.hypercalls.hostfs = hostfs;
    }

    /// Calls the hooks, if any, with a view of the vCPU.
    pub(crate) fn hook<R>(
        &mut self,
        f: impl FnOnce(&mut dyn RunHooks, &mut dyn VcpuAccess) -> R,
    ) -> Option<R> {
        let hooks = self.hooks.as_deref_mut()?;
        let mut cpu = Access {
            vcpu: &mut self.vcpu,
            guest: &self.guest,
            running: &mut self.running,
        };
        Some(f(hooks, &mut cpu))
    }

    /// Runs the guest until it exits or is stopped.
    pub fn run(&mut self) -> Result<Outcome, Error> {
        match self.hook(|h, cpu| h.start(cpu)) {
            Some(Err(Stop::Host(e))) => return Err(e),
            // Killed before the first instruction: nothing to report.
            Some(Err(_)) => return Ok(Outcome::Stopped),
            _ => {}
        }
        loop {
            let handled = self
                .step()
                .and_then(|()| self.hook(|h, cpu| h.after_exit(cpu)).unwrap_or(Ok(())));
            if let Err(stop) = handled {
                return self.finish(stop);
            }
        }
    }

    /// One `KVM_RUN` and its exit.
    pub(crate) fn step(&mut self) -> Handled {
        self.stats.exits += 1;
        self.vcpu
            .cover_pool(self.guest.registry.pool().high_water_bytes())?;
        let t0 = std::time::Instant::now();
        let exit = self.vcpu.run();
        self.exited_at = std::time::Instant::now();
        self.stats.run_ns += self.exited_at.duration_since(t0).as_nanos() as u64;
        let exit = exit?;
        log::trace!("exit: {exit:?}");
        match exit {
            Exit::Out { port, len, value } => self.on_out(port, len, value),
            Exit::Interrupted => self.on_interrupted(),
            // While a process is on the vCPU, anything else it makes the
            // vCPU do is its own fault, never the VM's. A triple fault
            // stays a stop: no process can cause one (the IDT, the TSS and
            // the trap stack are the host's), and on AMD KVM resets the
            // vCPU after it, so the kernel could not simply be resumed.
            // KVM gives up emulating an instruction it had to emulate only
            // because its shadow MMU write-protects the page (a pool page
            // that was a page table and is now a process's data): an
            // AVX-512 store, say, which its emulator does not know. Drop
            // the shadow and run the instruction again, once; a second
            // failure at the same rip is the process's fault.
            Exit::InternalError { suberror: 1 } if self.running.is_some() => {
                let rip = self.vcpu.context().0.rip;
                if self.emulation_retry == Some(rip) {
                    self.emulation_retry = None;
                    return self.process_fault(ProcessFault::Internal { suberror: 1 });
                }
                self.emulation_retry = Some(rip);
                log::debug!("KVM could not emulate the process's instruction at {rip:#x}: dropping the shadow, once");
                self.flush_translations()?;
                Ok(())
            }
            exit if self.running.is_some() && exit != Exit::Shutdown => {
                let fault = match exit {
                    Exit::In { port } => ProcessFault::In { port },
                    Exit::Mmio { addr, write } => ProcessFault::Mmio { addr, write },
                    Exit::InternalError { suberror } => ProcessFault::Internal { suberror },
                    Exit::FailEntry(reason) => ProcessFault::FailEntry { reason },
                    other => ProcessFault::Other(format!("{other:?}")),
                };
                self.process_fault(fault)
            }
            Exit::In { port } => Err(Violation::InPort { port }.into()),
            Exit::Mmio { addr, write } => Err(Violation::Mmio { addr, write }.into()),
            Exit::Shutdown => Err(Violation::TripleFault.into()),
            Exit::InternalError { suberror } => Err(Violation::InternalError { suberror }.into()),
            Exit::FailEntry(reason) => Err(Violation::FailEntry { reason }.into()),
            Exit::Other(what) => Err(Violation::UnexpectedExit(what).into()),
        }
    }

    /// Ends the run: reports what stopped it and tells the hooks.
    pub(crate) fn finish(&mut self, stop: Stop) -> Result<Outcome, Error> {
        match stop {
            Stop::Exit(status) => {
                self.hook(|h, cpu| h.exited(cpu, status));
                Ok(Outcome::Exited(status))
            }
            Stop::Violation(v) => {
                let what = match &self.running {
                    Some(r) => format!("{v} (while running vmspace {:#x})", r.id),
                    None => v.to_string(),
                };
                let (regs, sregs) = self.vcpu.context();
                crash::report(&what, &regs, &sregs);
                self.hook(|h, cpu| h.terminated(cpu));
                Ok(Outcome::Stopped)
            }
            Stop::Crash(c) => {
                crash::report(&c.describe(), &c.regs, &c.sregs);
                // Let the debugger look at the crash before the run ends.
                self.hook(|h, cpu| h.crashed(cpu, c.vector, c.regs, c.sregs));
                self.hook(|h, cpu| h.terminated(cpu));
                Ok(Outcome::Stopped)
            }
            Stop::Killed => {
                self.hook(|h, cpu| h.terminated(cpu));
                Ok(Outcome::Stopped)
            }
            Stop::Host(e) => Err(e),
        }
    }

    /// An `out`: by port and by who is on the vCPU.
    fn on_out(&mut self, port: u16, len: usize, value: u32) -> Handled {
        if (TRAP_PORT_BASE..TRAP_PORT_BASE + trap_area::VECTORS as u16).contains(&port) {
            let vector = (port - TRAP_PORT_BASE) as u8;
            return self.on_exception(vector);
        }
        if self.running.is_some() {
            // Only the syscall port is open to a process, and the stub
            // writes it with a one-byte `out`.
            if port == SYSCALL_PORT && len == 1 {
                return self.on_syscall();
            }
            return self.process_fault(ProcessFault::Out { port, len });
        }
        if (HC_PORT_BASE..HC_PORT_BASE + HC_PORT_COUNT).contains(&port) {
            let handled = self.on_hypercall(port, len, value);
            self.hook(|h, cpu| h.hypercall_done(cpu));
            return handled;
        }
        Err(Violation::KernelPort { port }.into())
    }

    /// The guest's memory (for stats).
    pub fn guest(&self) -> &Guest {
        &self.guest
    }

    /// Ends every vmspace (the guest kernel is gone); returns those that
    /// were running.
    pub fn teardown(&mut self) -> Vec<u64> {
        self.guest.registry.teardown_all()
    }

    /// The vmspaces still running, as [`Machine::teardown`] would return
    /// them, with nothing destroyed (the process's exit frees them).
    pub fn running_vmspaces(&self) -> Vec<u64> {
        self.guest.registry.running_ids()
    }

    /// Ends the machine at the process's end, leaving the VM (the vCPU,
    /// which holds it) to the process's exit and to
    /// [`crate::teardown`]'s helper. Everything else goes now, guest
    /// memory above all: unmapped here, its huge pages are free and warm
    /// for the next process (a next vkernel's boot), which would otherwise
    /// take pages the host has not touched for a while (on a host that is
    /// itself a VM with free page reporting, a 2 MiB page never touched or
    /// given back costs its hypervisor about 7 ms to fill).
    pub fn leave_to_exit(self) {
        let Machine { vcpu, .. } = self;
        std::mem::forget(vcpu);
    }
}

/// The vCPU as the hooks see it.
struct Access<'a, V: Vcpu> {
    vcpu: &'a mut V,
    guest: &'a Guest,
    running: &'a mut Option<Running>,
}

impl<V: Vcpu> VcpuAccess for Access<'_, V> {
    fn context(&self) -> (kvm_regs, kvm_sregs) {
        self.vcpu.context()
    }

    fn set_context(&mut self, regs: &kvm_regs, sregs: &kvm_sregs) {
        self.vcpu.set_context(regs, sregs);
    }

    fn initial_context(&self) -> Result<(kvm_regs, kvm_sregs), Error> {
        self.vcpu.initial_context()
    }

    fn fpu(&self) -> Option<kvm_fpu> {
        self.vcpu.fpu()
    }

    fn memory(&self) -> &GuestMemoryMmap {
        &self.guest.mem
    }

    fn kernel_cr3(&self) -> u64 {
        self.guest.kernel_cr3
    }

    fn in_process(&self) -> bool {
        self.running.is_some()
    }

    fn saved_kernel_rflags(&mut self) -> Option<&mut u64> {
        self.running.as_mut().map(|r| &mut r.kernel_regs.rflags)
    }
}
