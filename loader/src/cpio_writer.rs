//! Writes cpio "newc" archives: the build packs the built-in images with
//! it, `vkernel run -- PROG` packs a program on the fly, tests make images.

/// One member to pack.
pub struct Member<'a> {
    /// Path inside the image ("init", "etc/motd").
    pub name: &'a str,
    /// `st_mode` (e.g. `0o100755` for an executable file).
    pub mode: u32,
    /// Contents.
    pub data: &'a [u8],
}

fn header(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, size: usize) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        size as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Packs `members` into an archive ending with the trailer.
pub fn pack(members: &[Member]) -> Vec<u8> {
    // Sized once: growing by doubling copied a packed program twice more
    // (and faulted in the fresh copies).
    let header_max = |name: &str| 110 + name.len() + 1 + 3;
    let capacity = members
        .iter()
        .map(|m| header_max(m.name) + m.data.len() + 3)
        .sum::<usize>()
        + header_max(vkernel_abi::cpio::TRAILER);
    let mut out = Vec::with_capacity(capacity);
    for (i, m) in members.iter().enumerate() {
        header(&mut out, i as u32 + 1, m.name, m.mode, m.data.len());
        out.extend_from_slice(m.data);
        pad4(&mut out);
    }
    header(&mut out, 0, vkernel_abi::cpio::TRAILER, 0, 0);
    out
}

/// Packs one member whose contents `fill` appends to the archive (so a
/// file can be read straight into its place, not copied there), then
/// `rest`, then the trailer. `fill` gets the archive with the member's
/// header written and may reserve room; the header's size is set from
/// what it appended.
pub fn pack_filled<E>(
    name: &str,
    mode: u32,
    fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    rest: &[Member],
) -> Result<Vec<u8>, E> {
    let mut out = Vec::new();
    header(&mut out, 1, name, mode, 0);
    let data_start = out.len();
    fill(&mut out)?;
    let size = out.len() - data_start;
    // c_filesize, the seventh 8-digit field after the 6-byte magic.
    let field = 6 + 6 * 8;
    out[field..field + 8].copy_from_slice(format!("{:08x}", size as u32).as_bytes());
    pad4(&mut out);
    for (i, m) in rest.iter().enumerate() {
        header(&mut out, i as u32 + 2, m.name, m.mode, m.data.len());
        out.extend_from_slice(m.data);
        pad4(&mut out);
    }
    header(&mut out, 0, vkernel_abi::cpio::TRAILER, 0, 0);
    Ok(out)
}
