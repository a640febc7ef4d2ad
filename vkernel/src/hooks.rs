//! What the run loop tells an observer (the gdb stub), and the narrow view
//! of the vCPU the observer gets. The run loop knows no more of the
//! debugger than these calls; the debugger knows no more of the machine
//! than [`VcpuAccess`] (Firecracker's `gdb/target.rs` is the model).
//!
//! Every call is made on the vCPU thread between two `KVM_RUN`s, and only
//! when hooks are installed: without `--gdb` the run loop pays one `None`
//! check per call site.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use vkernel_abi::TrapFrame;
use vm_memory::GuestMemoryMmap;

use crate::error::Error;
use crate::machine::Stop;

/// The vCPU as an observer reaches it: registers of the context on it,
/// memory, and which context that is.
pub trait VcpuAccess {
    /// The registers of the context on the vCPU.
    fn context(&self) -> (kvm_regs, kvm_sregs);
    /// Replaces the context's registers for the next run.
    fn set_context(&mut self, regs: &kvm_regs, sregs: &kvm_sregs);
    /// The registers before the first run (read by ioctl).
    fn initial_context(&self) -> Result<(kvm_regs, kvm_sregs), Error>;
    /// The x87/SSE registers, if KVM gives them.
    fn fpu(&self) -> Option<kvm_fpu>;
    /// All guest memory (the debugger walks page tables itself).
    fn memory(&self) -> &GuestMemoryMmap;
    /// Root page table of the guest kernel's address space.
    fn kernel_cr3(&self) -> u64;
    /// Whether a process (not the guest kernel) is on the vCPU.
    fn in_process(&self) -> bool;
    /// With a process on the vCPU: the RFLAGS of the kernel context that
    /// `vmspace_ctl(RUN)` saved and resumes when the process traps.
    fn saved_kernel_rflags(&mut self) -> Option<&mut u64>;
}

/// Calls from the run loop. Each default does nothing.
pub trait RunHooks {
    /// Before the guest kernel's first instruction. `Err` ends the run
    /// before it starts.
    fn start(&mut self, _cpu: &mut dyn VcpuAccess) -> Result<(), Stop> {
        Ok(())
    }

    /// After every exit the run loop handled, the guest about to resume.
    fn after_exit(&mut self, _cpu: &mut dyn VcpuAccess) -> Result<(), Stop> {
        Ok(())
    }

    /// Whether the hooks interrupt `KVM_RUN` themselves (with the slice
    /// timer's signal): then an interruption while the slice still runs
    /// is theirs, not the end of the slice.
    fn kicks_vcpu(&self) -> bool {
        false
    }

    /// A guest-kernel hypercall was carried out (it may have entered a
    /// process).
    fn hypercall_done(&mut self, _cpu: &mut dyn VcpuAccess) {}

    /// `vmspace_ctl(RUN)` put a process on the vCPU.
    fn entered_process(&mut self, _cpu: &mut dyn VcpuAccess) {}

    /// The host resolved a page fault of the process on the vCPU (a page
    /// appeared in it).
    fn fault_resolved(&mut self, _cpu: &mut dyn VcpuAccess) {}

    /// The process on the vCPU is about to trap back to the guest kernel
    /// with `tf`, which the hook may change.
    fn leaving_process(&mut self, _cpu: &mut dyn VcpuAccess, _tf: &mut TrapFrame) {}

    /// #DB (vector 1) or #BP (3) arrived from the context on the vCPU;
    /// `regs` is the interrupted context. `None`: not the hook's trap, it
    /// takes the guest's usual path; `Some`: the hook handled it.
    fn debug_trap(
        &mut self,
        _cpu: &mut dyn VcpuAccess,
        _vector: u8,
        _regs: kvm_regs,
        _sregs: kvm_sregs,
    ) -> Option<Result<(), Stop>> {
        None
    }

    /// The guest kernel crashed with exception `vector` (already reported
    /// on stderr); `regs`/`sregs` are the context that faulted.
    fn crashed(
        &mut self,
        _cpu: &mut dyn VcpuAccess,
        _vector: u8,
        _regs: kvm_regs,
        _sregs: kvm_sregs,
    ) {
    }

    /// The guest kernel exited with `status`.
    fn exited(&mut self, _cpu: &mut dyn VcpuAccess, _status: i32) {}

    /// The host stopped the guest (a crash or a broken protocol, already
    /// reported).
    fn terminated(&mut self, _cpu: &mut dyn VcpuAccess) {}
}
