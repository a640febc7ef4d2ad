//! The run loop: `KVM_RUN`, then a `match` on why the vCPU stopped,
//! dispatching to small handlers. The host always knows which context is on
//! the vCPU and interprets every exit by it, never by what the guest claims.

use kvm_ioctls::VcpuExit;
use vkernel_abi::{layout, HC_PORT_BASE, HC_PORT_COUNT, TRAP_PORT_BASE};

use crate::crash;
use crate::error::Error;
use crate::hypercall::{self, Flow, Hypercalls};
use crate::trap_area;
use crate::vm::Vm;

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

/// The VM and everything the run loop needs.
pub struct Machine {
    vm: Vm,
    hypercalls: Hypercalls,
}

impl Machine {
    /// A machine ready to run (the vCPU already at the kernel's entry).
    pub fn new(vm: Vm) -> Self {
        Machine {
            vm,
            hypercalls: Hypercalls::default(),
        }
    }

    fn run_vcpu(&mut self) -> Result<Exit, Error> {
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
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Exit::Interrupted,
            Err(e) => {
                return Err(Error::Kvm {
                    what: "KVM_RUN",
                    source: e,
                })
            }
        })
    }

    /// Runs the guest until it exits or is stopped.
    pub fn run(&mut self) -> Result<Outcome, Error> {
        loop {
            let exit = self.run_vcpu()?;
            log::trace!("exit: {exit:?}");
            let flow = match exit {
                Exit::Out { port, len, value } => self.on_out(port, len, value),
                Exit::Interrupted => Ok(Flow::Resume),
                Exit::In { port } => Err(format!("guest kernel executed `in` from port {port:#x}; no port is readable")),
                Exit::Mmio { addr, write } => Err(format!(
                    "guest {} guest-physical address {addr:#x}, where there is no memory",
                    if write { "wrote" } else { "read" }
                )),
                Exit::Shutdown => Err("guest kernel triple-faulted (KVM_EXIT_SHUTDOWN): an exception occurred while delivering an exception".into()),
                Exit::InternalError => {
                    // SAFETY: KVM filled the `internal` member for this exit reason.
                    let sub = unsafe { self.vm.vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
                    Err(format!("KVM internal error (suberror {sub}): the instruction could not be emulated"))
                }
                Exit::FailEntry(reason) => Err(format!("KVM could not enter the guest (hardware reason {reason:#x})")),
                Exit::Other(what) => Err(format!("unexpected exit from KVM_RUN: {what}")),
            };
            match flow {
                Ok(Flow::Resume) => {}
                Ok(Flow::Exit(status)) => return Ok(Outcome::Exited(status)),
                Err(report) => {
                    self.report(&report, None);
                    return Ok(Outcome::Stopped);
                }
            }
        }
    }

    fn on_out(&mut self, port: u16, len: usize, value: u32) -> Result<Flow, String> {
        if (HC_PORT_BASE..HC_PORT_BASE + HC_PORT_COUNT).contains(&port) {
            return self.on_hypercall(port, len, value);
        }
        if (TRAP_PORT_BASE..TRAP_PORT_BASE + trap_area::VECTORS as u16).contains(&port) {
            let vector = (port - TRAP_PORT_BASE) as u8;
            return self.on_exception(vector);
        }
        Err(format!(
            "guest kernel wrote to I/O port {port:#x}, which is not a hypercall port"
        ))
    }

    fn on_hypercall(&mut self, port: u16, len: usize, value: u32) -> Result<Flow, String> {
        let nr = port - HC_PORT_BASE;
        if len != 4 {
            return Err(hypercall::ProtocolError::BadWidth { port, len }.to_string());
        }
        let addr = value as u64;
        let block = hypercall::read_block(&self.vm.mem, self.vm.ram_bytes, port, nr, addr)
            .map_err(|e| e.to_string())?;
        let pool_pages = self.vm.registry.pages_in_use() as u64;
        let (result, flow) =
            match self
                .hypercalls
                .basic(&self.vm.mem, self.vm.ram_bytes, pool_pages, nr, &block)
            {
                Some(done) => done,
                None => (Err(vkernel_abi::Errno::ENOSYS), Flow::Resume),
            };
        hypercall::write_result(&self.vm.mem, addr, result);
        Ok(flow)
    }

    /// An exception stub ran. It must be the real stub, in ring 0: ring 3
    /// cannot reach these ports (no I/O bitmap opens them), so anything else
    /// is a host bug or a hostile guest, and stops the run.
    fn on_exception(&mut self, vector: u8) -> Result<Flow, String> {
        let sync = self.vm.vcpu.sync_regs();
        // The emulator runs ring-0 code here, and it has completed the `out`
        // by the time we see it (RIP past it); fast-path KVM leaves RIP on it.
        let stub = trap_area::stub_addr(vector);
        if sync.sregs.cs.selector & 3 != 0
            || (sync.regs.rip != stub && sync.regs.rip != stub + trap_area::STUB_OUT_LEN)
        {
            return Err(format!(
                "exception port for vector {vector} written from rip {:#x}, cs {:#x}: not the trap stub",
                sync.regs.rip, sync.sregs.cs.selector
            ));
        }
        let mut frame = [0u8; 48];
        let at = trap_area::exception_frame_addr(vector);
        let has_err = vkernel_abi::frame::vector_has_error_code(vector);
        let len = if has_err { 48 } else { 40 };
        if !self.vm.read_trap_area(at, &mut frame[..len]) {
            return Err(format!(
                "cannot read the exception frame for vector {vector}"
            ));
        }
        let word =
            |i: usize| u64::from_le_bytes(frame[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let (err, base) = if has_err {
            (Some(word(0)), 1)
        } else {
            (None, 0)
        };
        let (rip, cs, rflags, rsp, ss) = (
            word(base),
            word(base + 1),
            word(base + 2),
            word(base + 3),
            word(base + 4),
        );
        // The interrupted context is in the hardware frame; the sync regs
        // hold the stub's view (ring 0, trap stack).
        let mut regs = sync.regs;
        regs.rip = rip;
        regs.rflags = rflags;
        regs.rsp = rsp;
        let mut sregs = sync.sregs;
        sregs.cs.selector = cs as u16;
        sregs.ss.selector = ss as u16;
        let mut what = format!(
            "guest kernel crashed: {} (vector {vector}) at rip {rip:#x}, cs {cs:#x}",
            crash::vector_name(vector)
        );
        if let Some(err) = err {
            what.push_str(&format!(", error code {err:#x}"));
            if vector == 14 {
                what.push_str(&format!(
                    "\n  fault address (cr2) {:#x}: {}",
                    sync.sregs.cr2,
                    crash::page_fault_reason(err)
                ));
            }
        }
        if rip >= layout::TRAP_AREA_BASE {
            what.push_str("\n  (the fault is inside the trap area)");
        }
        self.report(&what, Some((regs, sregs)));
        Err(String::new())
    }

    /// Prints a report with the registers (from `regs`, or as KVM has them).
    fn report(
        &mut self,
        what: &str,
        regs: Option<(kvm_bindings::kvm_regs, kvm_bindings::kvm_sregs)>,
    ) {
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
