//! The built-in guest kernel and images, built and packed by build.rs.

/// The built-in guest kernel ELF.
pub static KERNEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kernel"));
/// The built-in test kernel (`guest/hctest`): the hypercall suite, the
/// fuzzer, the in-guest benchmarks and the crash-on-purpose self-tests.
pub static TEST_KERNEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hctest"));
/// The default image (`images/default`).
pub static DEFAULT_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default.cpio"));
