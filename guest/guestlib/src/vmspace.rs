//! The vmspace hypercalls, as the guest kernel calls them (the seed's
//! prototypes, DragonFly's names). Each builds its block with
//! `Call::encode`, so the argument order is the ABI's, checked by the
//! compiler.

use crate::hypercall::invoke;
use vkernel_abi::{Call, Errno, HypercallBlock, TrapFrame, VextFrame, VMSPACE_CTL_RUN};

/// Result of a vmspace call: the value or the host's errno.
pub type VmResult = Result<i64, Errno>;

/// `vmspace_create(id, type, data)`.
pub fn create(id: u64, ty: u64, data: u64) -> VmResult {
    invoke(Call::VmspaceCreate { id, ty, data })
}

/// `vmspace_destroy(id)`.
pub fn destroy(id: u64) -> VmResult {
    invoke(Call::VmspaceDestroy { id })
}

/// `vmspace_ctl(id, cmd, tframe, vframe, timeout_us)` with raw addresses.
pub fn ctl_raw(id: u64, cmd: u64, tframe: u64, vframe: u64, timeout_us: u64) -> VmResult {
    invoke(Call::VmspaceCtl {
        id,
        cmd,
        tframe,
        vframe,
        timeout_us,
    })
}

/// Runs vmspace `id` from `tf` until it traps or `timeout_us` passes (0 =
/// no timeout); `tf` and `vf` come back holding the process's state.
/// Posted calls ([`crate::batch`]) go with it, in the same exit; if one
/// fails, nothing runs and the result is ECANCELED (the failure waits in
/// [`crate::batch::take_failure`]).
pub fn run(id: u64, tf: &mut TrapFrame, vf: &mut VextFrame, timeout_us: u64) -> VmResult {
    let call = Call::VmspaceCtl {
        id,
        cmd: VMSPACE_CTL_RUN,
        tframe: tf as *mut TrapFrame as u64,
        vframe: vf as *mut VextFrame as u64,
        timeout_us,
    };
    crate::batch::ctl_with_queue(call, invoke)
}

/// [`run`] for a CPU whose ring 3 honours protection keys (PVM: the
/// kernel and its processes run in ring 3 on user pages of key 0, and
/// WRPKRU works there). The process runs with PKRU `*pkru`; the kernel
/// takes PKRU 0 back before its first memory access after the exit (a
/// process that denied itself key 0 would otherwise make the kernel fault
/// and the host stop the VM), and `*pkru` comes back holding the
/// process's value. Only registers are touched between the WRPKRUs and
/// the `out` (instruction fetches are not checked against PKRU).
pub fn run_with_pkru(
    id: u64,
    tf: &mut TrapFrame,
    vf: &mut VextFrame,
    timeout_us: u64,
    pkru: &mut u32,
) -> VmResult {
    let call = Call::VmspaceCtl {
        id,
        cmd: VMSPACE_CTL_RUN,
        tframe: tf as *mut TrapFrame as u64,
        vframe: vf as *mut VextFrame as u64,
        timeout_us,
    };
    crate::batch::ctl_with_queue(call, |call| ctl_with_pkru(call, pkru))
}

/// Issues `call` (a RUN, with or without a batch) with the process's PKRU
/// around the `out`, as [`run_with_pkru`] says.
fn ctl_with_pkru(call: Call, pkru: &mut u32) -> VmResult {
    let block = call.encode();
    let port = vkernel_abi::HC_PORT_BASE + call.hypercall() as u16;
    let addr = &block as *const HypercallBlock as u64;
    let mut value = *pkru;
    // SAFETY: WRPKRU/RDPKRU (ecx = edx = 0) change only the protection-key
    // rights, and only when CPUID reports OSPKE (the caller's check); the
    // `out` is a hypercall as in `hypercall::raw`, whose block the host
    // writes (the asm clobbers memory, so it is re-read below). The host
    // resumes the kernel past the `out` with all its registers as they
    // were, so `value` and the zeroed ecx survive the exit.
    let done = unsafe {
        core::arch::asm!(
            "xor ecx, ecx",
            "xor edx, edx",
            "mov eax, {value:e}",
            "wrpkru",
            "mov edx, {port:e}",
            "mov eax, {addr:e}",
            "out dx, eax",
            "xor ecx, ecx",
            "rdpkru",
            "mov {value:e}, eax",
            "xor eax, eax",
            "xor edx, edx",
            "wrpkru",
            value = inout(reg) value,
            port = in(reg) u32::from(port),
            addr = in(reg) addr as u32,
            out("eax") _,
            out("ecx") _,
            out("edx") _,
            options(nostack, preserves_flags),
        );
        core::ptr::read_volatile(addr as *const HypercallBlock)
    };
    *pkru = value;
    if done.errno != 0 {
        Err(Errno(done.errno as i32))
    } else {
        Ok(done.ret)
    }
}

/// `vmspace_mmap(id, addr, len, prot, flags, fd, offset)`.
pub fn mmap(id: u64, addr: u64, len: u64, prot: u64, flags: u64, fd: u64, off: u64) -> VmResult {
    invoke(Call::VmspaceMmap {
        id,
        addr,
        len,
        prot,
        flags,
        fd,
        off,
    })
}

/// `vmspace_munmap(id, addr, len)`.
pub fn munmap(id: u64, addr: u64, len: u64) -> VmResult {
    invoke(Call::VmspaceMunmap { id, addr, len })
}

/// `vmspace_mprotect(id, addr, len, prot)`.
pub fn mprotect(id: u64, addr: u64, len: u64, prot: u64) -> VmResult {
    invoke(Call::VmspaceMprotect {
        id,
        addr,
        len,
        prot,
    })
}

/// `vmspace_pread(id, buf, nbyte, flags, offset)` with a raw buffer address.
pub fn pread_raw(id: u64, buf: u64, n: u64, flags: u64, off: u64) -> VmResult {
    invoke(Call::VmspacePread {
        id,
        buf,
        len: n,
        flags,
        off,
    })
}

/// `vmspace_pwrite(id, buf, nbyte, flags, offset)` with a raw buffer address.
pub fn pwrite_raw(id: u64, buf: u64, n: u64, flags: u64, off: u64) -> VmResult {
    invoke(Call::VmspacePwrite {
        id,
        buf,
        len: n,
        flags,
        off,
    })
}

/// Reads vmspace memory at `off` into `buf`.
pub fn pread(id: u64, buf: &mut [u8], off: u64) -> VmResult {
    pread_raw(id, buf.as_mut_ptr() as u64, buf.len() as u64, 0, off)
}

/// Writes `buf` into vmspace memory at `off`.
pub fn pwrite(id: u64, buf: &[u8], off: u64) -> VmResult {
    pwrite_raw(id, buf.as_ptr() as u64, buf.len() as u64, 0, off)
}

/// `vmspace_copy(dst, dst_addr, src, src_addr, len)`: copies `len` bytes
/// (at most [`vkernel_abi::VMSPACE_COPY_MAX`]) from vmspace `src` to
/// vmspace `dst`; the count, short at a page either side lacks.
pub fn copy(dst: u64, dst_addr: u64, src: u64, src_addr: u64, len: u64) -> VmResult {
    invoke(Call::VmspaceCopy {
        dst,
        dst_addr,
        src,
        src_addr,
        len,
    })
}

/// `vmspace_preadv(id, iov, iovcnt, flags, offset)` with a raw array address.
pub fn preadv_raw(id: u64, iov: u64, iovcnt: u64, flags: u64, off: u64) -> VmResult {
    invoke(Call::VmspacePreadv {
        id,
        iov,
        iovcnt,
        flags,
        off,
    })
}

/// `vmspace_pwritev(id, iov, iovcnt, flags, offset)` with a raw array address.
pub fn pwritev_raw(id: u64, iov: u64, iovcnt: u64, flags: u64, off: u64) -> VmResult {
    invoke(Call::VmspacePwritev {
        id,
        iov,
        iovcnt,
        flags,
        off,
    })
}

/// Reads the vmspace memory at `off` into the kernel buffers `iov` names,
/// each filled in turn (addresses are the kernel's own: identity-mapped).
pub fn preadv(id: u64, iov: &[vkernel_abi::KernelIovec], off: u64) -> VmResult {
    preadv_raw(id, iov.as_ptr() as u64, iov.len() as u64, 0, off)
}

/// Writes the kernel buffers `iov` names, in turn, to vmspace memory at
/// `off`.
pub fn pwritev(id: u64, iov: &[vkernel_abi::KernelIovec], off: u64) -> VmResult {
    pwritev_raw(id, iov.as_ptr() as u64, iov.len() as u64, 0, off)
}

/// `vmspace_mcontrol(id, addr, len, behav, value)`.
pub fn mcontrol(id: u64, addr: u64, len: u64, behav: u64, value: u64) -> VmResult {
    invoke(Call::VmspaceMcontrol {
        id,
        addr,
        len,
        behav,
        value,
    })
}

/// `vmspace_clone(src, dst)`.
pub fn clone(src: u64, dst: u64) -> VmResult {
    invoke(Call::VmspaceClone { src, dst })
}

/// Host pool pages in use.
pub fn pool_pages() -> i64 {
    invoke(Call::PoolStats {}).unwrap_or(-1)
}
