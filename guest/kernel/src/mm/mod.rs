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
pub mod vdso;

use alloc::rc::Rc;
use core::cell::RefCell;

use guest_pmap::GuestPmap;
use host_pmap::HostPmap;
use physmem::{Frames, PhysMem};
pub use regions::{FileMap, PageError, Pager};
pub use space::{AddressSpace, Fault, Mappers, SpaceRef};
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
    /// The host pool's size (boot info).
    pool_bytes: u64,
    /// The vDSO every exec maps (none if RAM was too short at boot).
    pub vdso: Option<vdso::Vdso>,
}

impl Mm {
    /// Takes guest RAM `[start, end)` for physical pages; the host pool
    /// holds `pool_bytes`.
    pub fn new(kind: PmapKind, start: u64, end: u64, pool_bytes: u64) -> Mm {
        let frames = Rc::new(RefCell::new(PhysMem::new(start, end)));
        let vdso = vdso::Vdso::new(&frames);
        Mm {
            kind,
            frames,
            next_vmid: 1,
            pool_bytes,
            vdso,
        }
    }

    /// The host pool's size if process memory lives there (`pmap=host`),
    /// else 0 (see [`MemStats`]).
    pub fn user_pool_bytes(&self) -> u64 {
        if self.kind == PmapKind::Host {
            self.pool_bytes
        } else {
            0
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

    /// A new, empty address space in a new vmspace, for exec to load:
    /// its calls to the host, its creation first, are held back until
    /// [`AddressSpace::send_deferred`] (the new image costs one exit);
    /// the guest pmap makes none to hold back.
    pub fn new_space(&mut self) -> Result<SpaceRef, Errno> {
        let vmid = self.new_vmid();
        let pmap = match self.kind {
            PmapKind::Host => HostPmap::create(vmid, self.frames.clone()),
            PmapKind::Guest => GuestPmap::create(vmid, self.frames.clone())?,
        };
        Ok(AddressSpace::new(pmap))
    }

    /// A copy of `parent` (fork) in a new vmspace; `stack_va` is where the
    /// parent's stack pointer is (its page is written first after fork).
    pub fn fork_space(&mut self, parent: &SpaceRef, stack_va: u64) -> Result<SpaceRef, Errno> {
        let vmid = self.new_vmid();
        parent.borrow_mut().fork(vmid, stack_va)
    }

    /// The memory figures `/proc/meminfo` and sysinfo report.
    pub fn stats(&self, shmem_bytes: u64) -> MemStats {
        MemStats::now(&self.frames, self.user_pool_bytes(), shmem_bytes)
    }

    /// `MemTotal` in bytes: [`MemStats::now`]'s `total` without asking the
    /// host how much of its pool is in use (an exit; `mmap` and `brk` ask
    /// for this on every call).
    pub fn total_bytes(&self) -> u64 {
        use vkernel_abi::layout::PAGE_SIZE;
        let frames = self.frames.borrow().total_pages() * PAGE_SIZE;
        frames + heap::usage().1 + self.user_pool_bytes()
    }

    /// Pages the processes hold: host pool pages in use, plus the physical
    /// pages handed out here (for leak checks).
    pub fn pages_in_use(&self) -> i64 {
        let f = self.frames.borrow();
        let guest = f.total_pages() - f.free_pages();
        guestlib::vmspace::pool_pages() + guest as i64
    }
}

/// What memory the kernel has and what holds it, in bytes, counted from
/// its own allocators: the physical pages (tmpfs files, and process memory
/// and page tables under `pmap=guest`), the kernel heap, and the host pool
/// (process memory under `pmap=host`, whose size the boot info gives).
/// The kernel image and boot image below the heap are not counted, as
/// Linux leaves its own image out of `MemTotal`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemStats {
    pub total: u64,
    pub free: u64,
    /// tmpfs file pages (Linux's `Shmem`, also counted in `Cached`).
    pub shmem: u64,
    /// Host files' cached pages (clean: reclaimable; in `Cached`).
    pub file_cache: u64,
    /// Kernel heap in use (Linux's `Slab`).
    pub heap_used: u64,
    /// Process memory and page tables (Linux's `AnonPages`).
    pub anon: u64,
}

impl MemStats {
    /// The figures now: `pool_bytes` is the host pool's size when process
    /// memory lives there (`pmap=host`), else 0; `shmem_bytes` what the
    /// tmpfs mounts hold.
    pub fn now(frames: &Frames, pool_bytes: u64, shmem_bytes: u64) -> MemStats {
        use vkernel_abi::layout::PAGE_SIZE;
        let (frames_total, frames_free, cache) = {
            let f = frames.borrow();
            (
                f.total_pages() * PAGE_SIZE,
                f.free_pages() * PAGE_SIZE,
                f.cache_pages * PAGE_SIZE,
            )
        };
        let (heap_used, heap_size) = heap::usage();
        let pool_used = if pool_bytes > 0 {
            (guestlib::vmspace::pool_pages().max(0) as u64 * PAGE_SIZE).min(pool_bytes)
        } else {
            0
        };
        let frames_used = frames_total - frames_free;
        let file_cache = cache.min(frames_used);
        let frames_used = frames_used - file_cache;
        MemStats {
            total: frames_total + heap_size + pool_bytes,
            free: frames_free + (heap_size - heap_used.min(heap_size)) + (pool_bytes - pool_used),
            shmem: shmem_bytes.min(frames_used),
            file_cache,
            heap_used,
            anon: frames_used - shmem_bytes.min(frames_used) + pool_used,
        }
    }
}
