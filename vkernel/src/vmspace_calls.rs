//! The vmspace hypercalls other than ctl(RUN): argument blocks mapped onto
//! the vmspace core's calls. The core does every check the seed does; the
//! FPU bookkeeping follows the vmspaces' lifetimes.

use vkernel_abi::{Errno, Hypercall, HypercallBlock};
use vmspace::VmspaceRegistry;

use crate::fpu::FpuStates;

/// Carries out vmspace hypercall `hc` (not ctl) for the guest kernel.
pub fn dispatch(
    hc: Hypercall,
    b: &HypercallBlock,
    registry: &mut VmspaceRegistry,
    fpu: &mut FpuStates,
    vcpu: &kvm_ioctls::VcpuFd,
) -> Result<i64, Errno> {
    let a = b.args;
    match hc {
        Hypercall::VmspaceCreate => registry.create(a[0], a[1], a[2]).map(|_| 0),
        Hypercall::VmspaceDestroy => {
            registry.destroy(a[0])?;
            fpu.forget(a[0]);
            Ok(0)
        }
        Hypercall::VmspaceMmap => registry
            .mmap(a[0], a[1], a[2], a[3], a[4], a[5], a[6])
            .map(|v| v as i64),
        Hypercall::VmspaceMunmap => registry.munmap(a[0], a[1], a[2]).map(|_| 0),
        // No pread/pwrite flags are defined: refuse any, so they can be
        // given a meaning later without silently changing behaviour.
        Hypercall::VmspacePread | Hypercall::VmspacePwrite if a[3] != 0 => Err(Errno::EINVAL),
        Hypercall::VmspacePread => registry.pread(a[0], a[1], a[2], a[4]).map(|n| n as i64),
        Hypercall::VmspacePwrite => registry.pwrite(a[0], a[1], a[2], a[4]).map(|n| n as i64),
        Hypercall::VmspaceMcontrol => registry.mcontrol(a[0], a[1], a[2], a[3], a[4]).map(|_| 0),
        Hypercall::VmspaceMprotect => registry.mprotect(a[0], a[1], a[2], a[3]).map(|_| 0),
        Hypercall::VmspaceClone => {
            registry.clone_vmspace(a[0], a[1])?;
            if fpu.copy(vcpu, a[0], a[1]).is_err() {
                // Cannot happen short of a KVM failure; undo the clone.
                let _ = registry.destroy(a[1]);
                return Err(Errno::EIO);
            }
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
