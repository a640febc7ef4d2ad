//! The kernel heap: `alloc`'s `Box`, `Vec` and `Rc` for the kernel's
//! objects (processes, address spaces, regions). A first-fit free list
//! (linked_list_allocator) over two ranges of guest RAM taken at boot; the
//! pages of process memory and page tables come from [`super::physmem`],
//! never from here.
//!
//! The first range is small and lies where the image ends, the second
//! holds the rest at the top of RAM: the host backs RAM with 2 MiB pages
//! (zeroed on first touch, about 0.1 ms each), and a boot needs some
//! heap (20-30 KiB for a trivial /init) and some physical pages, so both
//! start in the 2 MiB page the kernel and the image already filled, and a
//! boot touches one page fewer. The second range is used when the first
//! is full.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use linked_list_allocator::LockedHeap;

/// The first range's size, at most (the rest of a 2 MiB page or so).
pub const FIRST_BYTES: u64 = 256 << 10;

/// Two heaps, the first tried first; a block goes back to the one whose
/// range holds it.
struct TwoRanges {
    first: LockedHeap,
    rest: LockedHeap,
    first_start: AtomicUsize,
    first_end: AtomicUsize,
    /// The second range, handed to `rest` when the first is full (not
    /// before: the free list's first node would touch its 2 MiB page).
    rest_start: AtomicUsize,
    rest_len: AtomicUsize,
}

// SAFETY: each block comes from, and goes back to, one of two sound
// allocators; which one is decided by the address ranges fixed at init,
// before the first allocation.
unsafe impl GlobalAlloc for TwoRanges {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { self.first.alloc(layout) };
        if !p.is_null() {
            return p;
        }
        let mut rest = self.rest.lock();
        let len = self.rest_len.swap(0, Ordering::Relaxed);
        if len > 0 {
            // SAFETY: the range `init` set aside, handed over once (the
            // swap above) under the heap's lock.
            unsafe { rest.init(self.rest_start.load(Ordering::Relaxed) as *mut u8, len) };
        }
        rest.allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let a = ptr as usize;
        let in_first = a >= self.first_start.load(Ordering::Relaxed)
            && a < self.first_end.load(Ordering::Relaxed);
        // SAFETY: `ptr` came from the heap whose range holds it.
        unsafe {
            if in_first {
                self.first.dealloc(ptr, layout)
            } else {
                self.rest.dealloc(ptr, layout)
            }
        }
    }
}

#[global_allocator]
static HEAP: TwoRanges = TwoRanges {
    first: LockedHeap::empty(),
    rest: LockedHeap::empty(),
    first_start: AtomicUsize::new(0),
    first_end: AtomicUsize::new(0),
    rest_start: AtomicUsize::new(0),
    rest_len: AtomicUsize::new(0),
};

/// Heap size for `mem_bytes` of guest RAM: an eighth, between 1 and 64 MiB.
pub fn size_for(mem_bytes: u64) -> u64 {
    (mem_bytes / 8).clamp(1 << 20, 64 << 20) & !0xfff
}

/// Hands `first` and `rest` (`(start, len)` each) to the allocator.
/// Called once, at boot, before the first allocation.
pub fn init(first: (u64, u64), rest: (u64, u64)) {
    HEAP.first_start.store(first.0 as usize, Ordering::Relaxed);
    HEAP.first_end
        .store((first.0 + first.1) as usize, Ordering::Relaxed);
    HEAP.rest_start.store(rest.0 as usize, Ordering::Relaxed);
    HEAP.rest_len.store(rest.1 as usize, Ordering::Relaxed);
    // SAFETY: both ranges are guest RAM the host left free (above the
    // kernel, its boot info and the image), identity-mapped and writable,
    // apart from each other and from the physical pages; nothing else uses
    // them, and this runs once.
    unsafe { HEAP.first.lock().init(first.0 as *mut u8, first.1 as usize) };
}

/// Bytes of the heap in use, and its size (for `/proc/meminfo`; the
/// second range counts before it is handed over).
pub fn usage() -> (u64, u64) {
    let (f, r) = (HEAP.first.lock(), HEAP.rest.lock());
    let waiting = HEAP.rest_len.load(Ordering::Relaxed);
    (
        (f.used() + r.used()) as u64,
        (f.size() + r.size() + waiting) as u64,
    )
}
