//! Process address spaces, on either of the two paths a vmspace gets its
//! translations (the kernel argument `pmap=host|guest` chooses at boot):
//!
//! - `host` (the default): the host manages the memory; each operation is
//!   the vmspace hypercall of the same name (anonymous mappings, clone for
//!   fork, pread/pwrite for copies);
//! - `guest`: this kernel keeps the page tables in its own RAM
//!   ([`crate::pmap`]) and the host follows them (`MAP_VPAGETABLE`).
//!
//! Every caller in the kernel goes through here, so the system calls are
//! the same code on both paths. Addresses are page aligned and inside the
//! user range; the system calls check that before calling.

use crate::physmem;
use crate::pmap;
use crate::regions;
use crate::vmspace as vms;
use vkernel_abi::layout::VM_MIN_USER_ADDRESS;
use vkernel_abi::mman::*;
use vkernel_abi::Errno;

static mut GUEST_PMAP: bool = false;

/// Whether nothing is mapped in `[addr, addr + len)`.
pub fn is_free(vmid: u64, addr: u64, len: u64) -> bool {
    regions::of(vmid).is_ok_and(|r| r.is_free(addr, addr + len))
}

/// The highest free `len` bytes inside `[floor, top)`.
pub fn find_free(vmid: u64, top: u64, floor: u64, len: u64) -> Option<u64> {
    regions::of(vmid).ok()?.find_free_below(top, floor, len)
}

/// Chooses the path for every process from now on (at boot, before any
/// process exists): the guest pmap gets `[free_start, mem_bytes)`.
pub fn init(guest_pmap: bool, free_start: u64, mem_bytes: u64) {
    if guest_pmap {
        physmem::init(free_start, mem_bytes);
    }
    // SAFETY: written once at boot, before any reader; single-threaded.
    unsafe { GUEST_PMAP = guest_pmap };
}

/// Whether processes use the guest pmap.
pub fn guest_pmap() -> bool {
    // SAFETY: see `init`.
    unsafe { GUEST_PMAP }
}

/// Creates an empty address space `vmid`.
pub fn create(vmid: u64) -> Result<(), Errno> {
    if guest_pmap() {
        return pmap::create(vmid);
    }
    regions::track(vmid)?;
    vms::create(vmid, 0, 0)
        .map(|_| ())
        .inspect_err(|_| regions::untrack(vmid))
}

/// Destroys address space `vmid` and everything it holds.
pub fn destroy(vmid: u64) -> Result<(), Errno> {
    if guest_pmap() {
        return pmap::destroy(vmid);
    }
    vms::destroy(vmid)?;
    regions::untrack(vmid);
    Ok(())
}

/// Maps `[addr, addr + len)` demand-zero with `prot`, replacing whatever
/// was mapped there.
pub fn map_anon(vmid: u64, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
    if guest_pmap() {
        return pmap::map_anon(vmid, addr, addr + len, prot);
    }
    let regs = regions::of(vmid)?;
    // Whatever fails, the host's map and the regions must still agree.
    let saved = *regs;
    let flags = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    let r = regs
        .insert(addr, addr + len, prot)
        .and_then(|()| vms::mmap(vmid, addr, len, prot, flags, FD_NONE, 0));
    if r.is_err() {
        *regs = saved;
    }
    r.map(|_| ())
}

/// Unmaps `[addr, addr + len)`; holes are fine (Linux's munmap).
pub fn unmap(vmid: u64, addr: u64, len: u64) -> Result<(), Errno> {
    if guest_pmap() {
        return pmap::unmap(vmid, addr, addr + len);
    }
    let regs = regions::of(vmid)?;
    let saved = *regs;
    regs.remove(addr, addr + len)?;
    let r = match vms::munmap(vmid, addr, len) {
        Err(Errno::EINVAL) if addr >= VM_MIN_USER_ADDRESS => {
            // The range has holes, which the seed's munmap refuses: fill
            // them with one mapping (replacing what is there), then unmap
            // the whole range.
            let flags = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
            vms::mmap(vmid, addr, len, PROT_NONE, flags, FD_NONE, 0).map_err(|_| Errno::ENOMEM)?;
            vms::munmap(vmid, addr, len).map(|_| ())
        }
        r => r.map(|_| ()),
    };
    if r.is_err() {
        *regs = saved;
    }
    r
}

/// Changes the protection of `[addr, addr + len)` (`ENOMEM` on a hole).
pub fn protect(vmid: u64, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
    if guest_pmap() {
        return pmap::protect(vmid, addr, addr + len, prot);
    }
    vms::mprotect(vmid, addr, len, prot)?;
    // The host found no hole; only the region limit can refuse this, and
    // the protections serve no placement.
    let _ = regions::of(vmid).map(|r| r.protect(addr, addr + len, prot));
    Ok(())
}

/// Discards the pages of `[addr, addr + len)`: they read as zero again.
pub fn discard(vmid: u64, addr: u64, len: u64) -> Result<(), Errno> {
    if guest_pmap() {
        pmap::discard(vmid, addr, addr + len)
    } else {
        vms::mcontrol(vmid, addr, len, MADV_DONTNEED, 0).map(|_| ())
    }
}

/// Brings the pages of `[addr, addr + len)` in ahead of use (a hint: the
/// guest pmap faults them in on first touch anyway).
pub fn prefault(vmid: u64, addr: u64, len: u64) -> Result<(), Errno> {
    if guest_pmap() {
        Ok(())
    } else {
        vms::mcontrol(vmid, addr, len, MADV_WILLNEED, 0).map(|_| ())
    }
}

/// Makes `child` a copy of `parent` (eager copy by the host, or
/// copy-on-write by the guest pmap).
pub fn fork(parent: u64, child: u64) -> Result<(), Errno> {
    if guest_pmap() {
        return pmap::fork(parent, child);
    }
    let copy = *regions::of(parent)?;
    regions::track(child)?;
    if let Err(e) = vms::clone(parent, child) {
        regions::untrack(child);
        return Err(e);
    }
    *regions::of(child)? = copy;
    Ok(())
}

pub use crate::pmap::Fault;

/// A page fault of process `vmid`: resolved by the guest pmap (demand
/// paging, copy-on-write), or the process's own (SIGSEGV), or one the
/// guest pmap has no page left for. On the host path every fault the host
/// delivers is the process's.
pub fn fault(vmid: u64, addr: u64, error_code: u64) -> Fault {
    if guest_pmap() {
        pmap::fault(vmid, addr, error_code)
    } else {
        Fault::Segv
    }
}

/// Copies process memory at `addr` into `buf`; returns the bytes copied
/// (short at the first page the process cannot have).
pub fn read(vmid: u64, addr: u64, buf: &mut [u8]) -> usize {
    if guest_pmap() {
        pmap::copy(vmid, addr, buf.as_mut_ptr(), buf.len(), false)
    } else {
        vms::pread(vmid, buf, addr).map_or(0, |n| n as usize)
    }
}

/// Copies `buf` into process memory at `addr`; returns the bytes copied.
pub fn write(vmid: u64, addr: u64, buf: &[u8]) -> usize {
    if guest_pmap() {
        // `copy` only reads through the pointer when copying into the
        // process.
        pmap::copy(vmid, addr, buf.as_ptr() as *mut u8, buf.len(), true)
    } else {
        vms::pwrite(vmid, buf, addr).map_or(0, |n| n as usize)
    }
}

/// Pages the processes hold: host pool pages in use, plus the guest
/// pmap's pages (for leak checks).
pub fn pages_in_use() -> i64 {
    let guest = physmem::total_pages() - physmem::free_pages();
    vms::pool_pages() + guest as i64
}
