//! The kernel heap: `alloc`'s `Box`, `Vec` and `Rc` for the kernel's
//! objects (processes, address spaces, regions). A first-fit free list
//! (linked_list_allocator) over one range of guest RAM taken at boot; the
//! pages of process memory and page tables come from [`super::physmem`],
//! never from here.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Heap size for `mem_bytes` of guest RAM: an eighth, between 1 and 64 MiB.
pub fn size_for(mem_bytes: u64) -> u64 {
    (mem_bytes / 8).clamp(1 << 20, 64 << 20) & !0xfff
}

/// Hands `[start, start + len)` to the allocator. Called once, at boot,
/// before the first allocation.
pub fn init(start: u64, len: u64) {
    // SAFETY: the range is guest RAM the host left free (above the kernel,
    // its boot info and the image), identity-mapped and writable; nothing
    // else uses it, and this runs once.
    unsafe { HEAP.lock().init(start as *mut u8, len as usize) };
}

/// Bytes of the heap in use, and its size (for `/proc/meminfo`).
pub fn usage() -> (u64, u64) {
    let h = HEAP.lock();
    (h.used() as u64, h.size() as u64)
}
