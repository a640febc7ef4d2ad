//! Address spaces: a process's memory as one object — its regions, its
//! break, and the pmap that turns them into translations — reference
//! counted, so that several threads can share one. Destroying the last
//! reference destroys the vmspace.
//!
//! The two ways a vmspace gets its translations are two implementations of
//! [`Pmap`] (gVisor's `platform.AddressSpace` is the same seam):
//! - [`HostPmap`](super::host_pmap::HostPmap) (`pmap=host`, the default):
//!   the host manages the memory; each operation is the vmspace hypercall
//!   of the same name;
//! - [`GuestPmap`](super::guest_pmap::GuestPmap) (`pmap=guest`): this
//!   kernel keeps the page tables in its own RAM and the host follows them
//!   (`MAP_VPAGETABLE`).
//!
//! The regions are kept here, above both: placement, the checks, and what
//! a fault may touch are the same code on both paths. Addresses are page
//! aligned and inside the user range; the system calls check that before
//! calling.

use alloc::boxed::Box;
use alloc::rc::Rc;
use core::cell::RefCell;

use super::regions::Regions;
use vkernel_abi::Errno;

/// What became of a process's page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Mapped (demand-zero, copy-on-write broken): the process goes on.
    Resolved,
    /// Outside its regions or against their protection: SIGSEGV.
    Segv,
    /// Allowed, but no page is left to map.
    OutOfMemory,
}

/// One way of giving a vmspace its translations. The caller
/// ([`AddressSpace`]) has updated the regions before each call that
/// changes them, and restores them if the call fails.
pub trait Pmap {
    /// The host vmspace.
    fn vmid(&self) -> u64;
    /// Maps `[start, end)` demand-zero with `prot`, replacing what was there.
    fn map_anon(&mut self, start: u64, end: u64, prot: u64) -> Result<(), Errno>;
    /// Unmaps `[start, end)`; holes are fine.
    fn unmap(&mut self, start: u64, end: u64) -> Result<(), Errno>;
    /// Changes the protection of `[start, end)` (covered, no holes).
    fn protect(&mut self, start: u64, end: u64, prot: u64) -> Result<(), Errno>;
    /// Discards the pages of `[start, end)`: they read as zero again.
    fn discard(&mut self, start: u64, end: u64) -> Result<(), Errno>;
    /// Brings the pages of `[start, end)` in ahead of use (a hint).
    fn prefault(&mut self, start: u64, end: u64) -> Result<(), Errno>;
    /// A page fault at `addr` with x86 error code `error_code`.
    fn fault(&mut self, regions: &Regions, addr: u64, error_code: u64) -> Fault;
    /// Copies process memory at `addr` into `buf`; the bytes copied (short
    /// at the first page the process cannot have).
    fn read(&mut self, regions: &Regions, addr: u64, buf: &mut [u8]) -> usize;
    /// Copies `buf` into process memory at `addr`; the bytes copied.
    fn write(&mut self, regions: &Regions, addr: u64, buf: &[u8]) -> usize;
    /// Copies process memory from `addr` on into the buffers `bufs` in
    /// turn (a scatter list); the bytes copied, short as [`Pmap::read`].
    fn read_v(&mut self, regions: &Regions, addr: u64, bufs: &mut [&mut [u8]]) -> usize {
        let mut done = 0;
        for b in bufs.iter_mut() {
            let n = self.read(regions, addr + done as u64, b);
            done += n;
            if n < b.len() {
                break;
            }
        }
        done
    }
    /// Copies the buffers `bufs` in turn into process memory from `addr`
    /// on (a gather list); the bytes copied.
    fn write_v(&mut self, regions: &Regions, addr: u64, bufs: &[&[u8]]) -> usize {
        let mut done = 0;
        for b in bufs {
            let n = self.write(regions, addr + done as u64, b);
            done += n;
            if n < b.len() {
                break;
            }
        }
        done
    }
    /// A copy of this address space in new vmspace `child` (eager copy by
    /// the host, or copy-on-write by the guest pmap).
    fn fork(&mut self, child: u64) -> Result<Box<dyn Pmap>, Errno>;
}

/// A shared address space.
pub type SpaceRef = Rc<RefCell<AddressSpace>>;

/// A process's memory.
pub struct AddressSpace {
    regions: Regions,
    pmap: Box<dyn Pmap>,
    /// Program break: `brk_start` is the end of the loaded image.
    pub brk_start: u64,
    pub brk: u64,
    /// Lowest address the mmap area may reach (above the break's room).
    pub mmap_floor: u64,
}

impl AddressSpace {
    /// An empty address space over `pmap`.
    pub fn new(pmap: Box<dyn Pmap>) -> SpaceRef {
        Rc::new(RefCell::new(AddressSpace {
            regions: Regions::default(),
            pmap,
            brk_start: 0,
            brk: 0,
            mmap_floor: 0,
        }))
    }

    /// The host vmspace holding it.
    pub fn vmid(&self) -> u64 {
        self.pmap.vmid()
    }

    /// The mapped regions, in address order (`/proc/PID/maps`).
    pub fn regions(&self) -> &[super::regions::Region] {
        self.regions.as_slice()
    }

    /// Whether nothing is mapped in `[addr, addr + len)`.
    pub fn is_free(&self, addr: u64, len: u64) -> bool {
        self.regions.is_free(addr, addr + len)
    }

    /// The highest free `len` bytes inside `[floor, top)`.
    pub fn find_free(&self, top: u64, floor: u64, len: u64) -> Option<u64> {
        self.regions.find_free_below(top, floor, len)
    }

    /// Runs `change` on the regions, then `apply` on the pmap; if either
    /// fails, the regions are as before (the pmap and the regions must
    /// always agree).
    fn change(
        &mut self,
        change: impl FnOnce(&mut Regions) -> Result<(), Errno>,
        apply: impl FnOnce(&mut dyn Pmap) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let saved = self.regions.try_clone()?;
        let r = change(&mut self.regions).and_then(|()| apply(self.pmap.as_mut()));
        if r.is_err() {
            self.regions = saved;
        }
        r
    }

    /// Maps `[addr, addr + len)` demand-zero with `prot`, replacing
    /// whatever was mapped there.
    pub fn map_anon(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        let end = addr + len;
        self.change(
            |r| r.insert(addr, end, prot),
            |p| p.map_anon(addr, end, prot),
        )
    }

    /// Unmaps `[addr, addr + len)`; holes are fine (Linux's munmap).
    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = addr + len;
        self.change(|r| r.remove(addr, end), |p| p.unmap(addr, end))
    }

    /// Changes the protection of `[addr, addr + len)` (`ENOMEM` on a hole).
    pub fn protect(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        let end = addr + len;
        self.change(
            |r| r.protect(addr, end, prot),
            |p| p.protect(addr, end, prot),
        )
    }

    /// Discards the pages of `[addr, addr + len)`: they read as zero again.
    pub fn discard(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        self.pmap.discard(addr, addr + len)
    }

    /// Brings the pages of `[addr, addr + len)` in ahead of use.
    pub fn prefault(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        self.pmap.prefault(addr, addr + len)
    }

    /// A page fault of the process: resolved (demand paging,
    /// copy-on-write), the process's own (SIGSEGV), or out of memory.
    pub fn fault(&mut self, addr: u64, error_code: u64) -> Fault {
        self.pmap.fault(&self.regions, addr, error_code)
    }

    /// Copies process memory at `addr` into `buf`; the bytes copied.
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        self.pmap.read(&self.regions, addr, buf)
    }

    /// Copies `buf` into process memory at `addr`; the bytes copied.
    pub fn write(&mut self, addr: u64, buf: &[u8]) -> usize {
        self.pmap.write(&self.regions, addr, buf)
    }

    /// Copies process memory from `addr` on into `bufs` in turn; the
    /// bytes copied.
    pub fn read_v(&mut self, addr: u64, bufs: &mut [&mut [u8]]) -> usize {
        self.pmap.read_v(&self.regions, addr, bufs)
    }

    /// Copies `bufs` in turn into process memory from `addr` on; the
    /// bytes copied.
    pub fn write_v(&mut self, addr: u64, bufs: &[&[u8]]) -> usize {
        self.pmap.write_v(&self.regions, addr, bufs)
    }

    /// A copy of this address space (fork), in new vmspace `child`.
    pub fn fork(&mut self, child: u64) -> Result<SpaceRef, Errno> {
        let regions = self.regions.try_clone()?;
        let pmap = self.pmap.fork(child)?;
        Ok(Rc::new(RefCell::new(AddressSpace {
            regions,
            pmap,
            brk_start: self.brk_start,
            brk: self.brk,
            mmap_floor: self.mmap_floor,
        })))
    }
}
