//! `pmap=host` (the default): the host keeps the process's translations.
//! Every operation is the vmspace hypercall of the same name: anonymous
//! mappings, `vmspace_clone` for fork, pread/pwrite for copies, and
//! preadv/pwritev for a list of kernel pieces (a file's pages, a pipe's
//! ring halves): one exit per up to [`VMSPACE_IOV_MAX`] pieces.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::regions::Regions;
use super::space::{Fault, Pmap};
use guestlib::vmspace as vms;
use vkernel_abi::layout::VM_MIN_USER_ADDRESS;
use vkernel_abi::mman::*;
use vkernel_abi::{Errno, KernelIovec, VMSPACE_IOV_MAX};

/// A vmspace whose memory the host manages.
pub struct HostPmap {
    vmid: u64,
    /// The iovec array of the last preadv/pwritev, kept to be reused.
    iov: Vec<KernelIovec>,
}

impl HostPmap {
    /// Moves the pieces `(address, length)` (kernel memory, identity
    /// mapped) to or from process memory at `addr` with as few
    /// preadv/pwritev hypercalls as [`VMSPACE_IOV_MAX`] allows; the bytes
    /// moved, short at the first page the process does not have.
    fn copy_v(
        &mut self,
        addr: u64,
        count: usize,
        pieces: impl Iterator<Item = (u64, usize)>,
        read: bool,
    ) -> usize {
        let batch = count.min(VMSPACE_IOV_MAX as usize);
        self.iov.clear();
        // One piece is one pread/pwrite; without heap for the array, a
        // hypercall per piece.
        if count <= 1 || self.iov.try_reserve(batch).is_err() {
            return self.copy_each(addr, pieces, read);
        }
        let mut done = 0usize;
        let mut pieces = pieces.filter(|&(_, len)| len > 0).peekable();
        while pieces.peek().is_some() {
            self.iov.clear();
            let mut want = 0usize;
            for (base, len) in pieces.by_ref().take(batch) {
                self.iov.push(KernelIovec {
                    base,
                    len: len as u64,
                });
                want += len;
            }
            let at = addr + done as u64;
            let r = if read {
                vms::preadv(self.vmid, &self.iov, at)
            } else {
                vms::pwritev(self.vmid, &self.iov, at)
            };
            let n = r.map_or(0, |n| n as usize);
            done += n;
            if n < want {
                break;
            }
        }
        done
    }

    /// [`HostPmap::copy_v`] one pread/pwrite per piece.
    fn copy_each(
        &self,
        addr: u64,
        pieces: impl Iterator<Item = (u64, usize)>,
        read: bool,
    ) -> usize {
        let mut done = 0usize;
        for (base, len) in pieces.filter(|&(_, len)| len > 0) {
            let at = addr + done as u64;
            let r = if read {
                vms::pread_raw(self.vmid, base, len as u64, 0, at)
            } else {
                vms::pwrite_raw(self.vmid, base, len as u64, 0, at)
            };
            let n = r.map_or(0, |n| n as usize);
            done += n;
            if n < len {
                break;
            }
        }
        done
    }
}

impl HostPmap {
    /// Creates the (empty) vmspace `vmid`.
    pub fn create(vmid: u64) -> Result<Box<dyn Pmap>, Errno> {
        vms::create(vmid, 0, 0)?;
        Ok(Box::new(HostPmap {
            vmid,
            iov: Vec::new(),
        }))
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

    fn read_v(&mut self, _: &Regions, addr: u64, bufs: &mut [&mut [u8]]) -> usize {
        let count = bufs.iter().filter(|b| !b.is_empty()).count();
        let pieces = bufs.iter_mut().map(|b| (b.as_mut_ptr() as u64, b.len()));
        self.copy_v(addr, count, pieces, true)
    }

    fn write_v(&mut self, _: &Regions, addr: u64, bufs: &[&[u8]]) -> usize {
        let count = bufs.iter().filter(|b| !b.is_empty()).count();
        let pieces = bufs.iter().map(|b| (b.as_ptr() as u64, b.len()));
        self.copy_v(addr, count, pieces, false)
    }

    fn fork(&mut self, child: u64) -> Result<Box<dyn Pmap>, Errno> {
        vms::clone(self.vmid, child)?;
        Ok(Box::new(HostPmap {
            vmid: child,
            iov: Vec::new(),
        }))
    }
}
