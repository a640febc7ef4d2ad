//! Plain-old-data views of the ABI structures, so the host can read and
//! write them in guest memory as bytes without a copy per field.

/// A `repr(C)` type made only of integers: every byte pattern is a valid
/// value and it has no padding.
///
/// # Safety
/// Implement only for such types.
pub unsafe trait Pod: Copy + Default {
    /// The value's bytes.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Pod types have no padding, so all size_of bytes are initialized.
        unsafe {
            core::slice::from_raw_parts(
                self as *const Self as *const u8,
                core::mem::size_of::<Self>(),
            )
        }
    }

    /// The value's bytes, writable.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and any byte pattern is a valid Self.
        unsafe {
            core::slice::from_raw_parts_mut(
                self as *mut Self as *mut u8,
                core::mem::size_of::<Self>(),
            )
        }
    }

    /// A value read from the first `size_of::<Self>()` bytes, or `None` if
    /// `bytes` is shorter.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut v = Self::default();
        let n = core::mem::size_of::<Self>();
        v.as_bytes_mut().copy_from_slice(bytes.get(..n)?);
        Some(v)
    }
}

// SAFETY: all four are repr(C) (TrapFrame packed) structs of u64/i64 fields.
unsafe impl Pod for crate::HypercallBlock {}
// SAFETY: as above.
unsafe impl Pod for crate::BootInfo {}
// SAFETY: as above.
unsafe impl Pod for crate::TrapFrame {}
// SAFETY: as above.
unsafe impl Pod for crate::VextFrame {}
// SAFETY: a repr(C) struct of u64 fields.
unsafe impl Pod for crate::HostfsStat {}
// SAFETY: a repr(C) struct of two u64 fields.
unsafe impl Pod for crate::KernelIovec {}
// SAFETY: repr(C), u64/i64 fields only, no padding.
unsafe impl Pod for crate::BatchEntry {}
// SAFETY: plain integers: no padding, every bit pattern valid.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: repr(C), integers only, no padding (explicit pad fields).
unsafe impl Pod for crate::clock::ClockPage {}
