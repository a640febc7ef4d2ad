//! Memory: the kernel heap, physical pages, and process address spaces on
//! either of the two pmaps (the kernel argument `pmap=host|guest` chooses
//! at boot), with the user-copy routines every system call goes through.

mod guest_pmap;
pub mod heap;
mod host_pmap;
pub mod physmem;
pub mod regions;
pub mod space;
pub mod uaccess;

use alloc::rc::Rc;
use core::cell::RefCell;

use guest_pmap::GuestPmap;
use host_pmap::HostPmap;
use physmem::{Frames, PhysMem};
pub use space::{AddressSpace, Fault, SpaceRef};
use vkernel_abi::Errno;

/// Who keeps the processes' page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmapKind {
    /// The host (vmspace mmap, clone, pread/pwrite).
    Host,
    /// This kernel, in its own RAM (`MAP_VPAGETABLE`).
    Guest,
}

/// The memory subsystem's state: one per kernel.
pub struct Mm {
    kind: PmapKind,
    frames: Frames,
    /// The next vmspace id (ids are never reused, so a stale id names
    /// nothing rather than someone else's memory).
    next_vmid: u64,
}

impl Mm {
    /// Takes guest RAM `[start, end)` for physical pages.
    pub fn new(kind: PmapKind, start: u64, end: u64) -> Mm {
        Mm {
            kind,
            frames: Rc::new(RefCell::new(PhysMem::new(start, end))),
            next_vmid: 1,
        }
    }

    /// The physical page allocator (the file systems' pages come from it).
    pub fn frames(&self) -> Frames {
        self.frames.clone()
    }

    /// A fresh vmspace id.
    pub fn new_vmid(&mut self) -> u64 {
        let id = self.next_vmid;
        self.next_vmid += 1;
        id
    }

    /// A new, empty address space in a new vmspace.
    pub fn new_space(&mut self) -> Result<SpaceRef, Errno> {
        let vmid = self.new_vmid();
        let pmap = match self.kind {
            PmapKind::Host => HostPmap::create(vmid)?,
            PmapKind::Guest => GuestPmap::create(vmid, self.frames.clone())?,
        };
        Ok(AddressSpace::new(pmap))
    }

    /// A copy of `parent` (fork) in a new vmspace.
    pub fn fork_space(&mut self, parent: &SpaceRef) -> Result<SpaceRef, Errno> {
        let vmid = self.new_vmid();
        parent.borrow_mut().fork(vmid)
    }

    /// Pages the processes hold: host pool pages in use, plus the physical
    /// pages handed out here (for leak checks).
    pub fn pages_in_use(&self) -> i64 {
        let f = self.frames.borrow();
        let guest = f.total_pages() - f.free_pages();
        guestlib::vmspace::pool_pages() + guest as i64
    }
}
