//! The boot-info block the host leaves at `BOOT_INFO_ADDR`.

use vkernel_abi::{BootInfo, BOOT_INFO_MAGIC};

/// What the kernel learns at boot, with borrowed views of the image and
/// command line (both live in guest memory for the whole run).
pub struct Boot {
    pub info: BootInfo,
    pub image: &'static [u8],
    pub cmdline: &'static str,
}

/// Reads the boot info at `addr` (rdi at entry).
pub fn read(addr: u64) -> Boot {
    // SAFETY: the host wrote a BootInfo at `addr` inside identity-mapped RAM
    // before our first instruction; nothing else writes it.
    let info = unsafe { core::ptr::read(addr as *const BootInfo) };
    if info.magic != BOOT_INFO_MAGIC {
        panic!("bad boot info magic {:#x}", info.magic);
    }
    // SAFETY: the host placed the image and the command line inside RAM at
    // these addresses, in pages the kernel never writes.
    let image = unsafe {
        core::slice::from_raw_parts(info.image_addr as *const u8, info.image_len as usize)
    };
    // SAFETY: as above.
    let cmd = unsafe {
        core::slice::from_raw_parts(info.cmdline_addr as *const u8, info.cmdline_len as usize)
    };
    let cmdline = core::str::from_utf8(cmd).unwrap_or("");
    Boot {
        info,
        image,
        cmdline,
    }
}

/// The value of `key=value` in the command line, if present.
pub fn arg<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|w| {
        let (k, v) = w.split_once('=')?;
        (k == key).then_some(v)
    })
}
