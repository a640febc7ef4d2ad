//! `pmap=host` (the default): the host keeps the process's translations.
//! Every operation is the vmspace hypercall of the same name: anonymous
//! mappings, `vmspace_clone` for fork, pread/pwrite for copies.

use alloc::boxed::Box;

use super::regions::Regions;
use super::space::{Fault, Pmap};
use guestlib::vmspace as vms;
use vkernel_abi::layout::VM_MIN_USER_ADDRESS;
use vkernel_abi::mman::*;
use vkernel_abi::Errno;

/// A vmspace whose memory the host manages.
pub struct HostPmap {
    vmid: u64,
}

impl HostPmap {
    /// Creates the (empty) vmspace `vmid`.
    pub fn create(vmid: u64) -> Result<Box<dyn Pmap>, Errno> {
        vms::create(vmid, 0, 0)?;
        Ok(Box::new(HostPmap { vmid }))
    }
}

impl Drop for HostPmap {
    fn drop(&mut self) {
        // Fails only for a vmspace that is running or unknown, neither of
        // which the last reference to an address space can see.
        let _ = vms::destroy(self.vmid);
    }
}

impl Pmap for HostPmap {
    fn vmid(&self) -> u64 {
        self.vmid
    }

    fn map_anon(&mut self, start: u64, end: u64, prot: u64) -> Result<(), Errno> {
        let flags = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
        vms::mmap(self.vmid, start, end - start, prot, flags, FD_NONE, 0).map(|_| ())
    }

    fn unmap(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let len = end - start;
        match vms::munmap(self.vmid, start, len) {
            Err(Errno::EINVAL) if start >= VM_MIN_USER_ADDRESS => {
                // The range has holes, which the seed's munmap refuses: fill
                // them with one mapping (replacing what is there), then
                // unmap the whole range.
                let flags = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
                vms::mmap(self.vmid, start, len, PROT_NONE, flags, FD_NONE, 0)
                    .map_err(|_| Errno::ENOMEM)?;
                vms::munmap(self.vmid, start, len).map(|_| ())
            }
            r => r.map(|_| ()),
        }
    }

    fn protect(&mut self, start: u64, end: u64, prot: u64) -> Result<(), Errno> {
        vms::mprotect(self.vmid, start, end - start, prot).map(|_| ())
    }

    fn discard(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        vms::mcontrol(self.vmid, start, end - start, MADV_DONTNEED, 0).map(|_| ())
    }

    fn prefault(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        vms::mcontrol(self.vmid, start, end - start, MADV_WILLNEED, 0).map(|_| ())
    }

    fn fault(&mut self, _: &Regions, _: u64, _: u64) -> Fault {
        // The host resolves every fault it can; what it delivers is the
        // process's own.
        Fault::Segv
    }

    fn read(&mut self, _: &Regions, addr: u64, buf: &mut [u8]) -> usize {
        vms::pread(self.vmid, buf, addr).map_or(0, |n| n as usize)
    }

    fn write(&mut self, _: &Regions, addr: u64, buf: &[u8]) -> usize {
        vms::pwrite(self.vmid, buf, addr).map_or(0, |n| n as usize)
    }

    fn fork(&mut self, child: u64) -> Result<Box<dyn Pmap>, Errno> {
        vms::clone(self.vmid, child)?;
        Ok(Box::new(HostPmap { vmid: child }))
    }
}
