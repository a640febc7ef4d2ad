//! The checks every reader of an ELF file shares: the host's loader (the
//! guest kernel), its check of an image's /init, the gdb stub (the
//! kernel's text) and the guest kernel's `exec`. The bytes are read by the
//! [`elf`](::elf) crate (no_std, no allocation, no unsafe code); this module
//! only says which files are ours: ELF64, little-endian, x86-64, with a
//! program header table of 56-byte entries inside the file. What each
//! reader then requires of the type and the segments is its own, and so is
//! the sentence it prints: each maps an [`ElfError`] to its message.
//!
//! The crate's `ElfBytes::minimal_parse` is not used: it also requires a
//! well-formed section header table, which no reader here needs (Linux's
//! exec ignores section headers too), and its one error for every table
//! could not say which check failed.

use ::elf::abi::{EI_NIDENT, ELFMAGIC, EM_X86_64};
use ::elf::endian::LittleEndian;
use ::elf::file::{parse_ident, Class, FileHeader, ELF64_EHDR_TAILSIZE};
use ::elf::parse::ParseError;
use ::elf::segment::SegmentTable;

/// The parsed ELF64 file header.
pub type Header = FileHeader<LittleEndian>;
/// The program header table, parsed entry by entry as it is read.
pub type ProgramHeaders<'a> = SegmentTable<'a, LittleEndian>;

/// Bytes of an ELF64 file header.
pub const EHDR_LEN: usize = EI_NIDENT + ELF64_EHDR_TAILSIZE;
/// Bytes of an ELF64 program header (`Elf64_Phdr`).
pub const PHDR_LEN: usize = core::mem::size_of::<::elf::segment::Elf64_Phdr>();

/// Why a file is not an ELF this project can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// No `\x7fELF` magic (the file may be shorter than the magic).
    NotElf,
    /// Shorter than an ELF64 file header: the file's length.
    Truncated(usize),
    /// `e_ident[EI_VERSION]` is not `EV_CURRENT` (1): the value.
    Version(u8),
    /// Not ELFCLASS64 with ELFDATA2LSB.
    NotElf64Le,
    /// `e_machine` is not EM_X86_64: the value.
    Machine(u16),
    /// `e_phentsize` is not [`PHDR_LEN`]: the value.
    PhentSize(u16),
    /// The program header table does not lie inside the file.
    PhdrsOutsideFile,
}

/// Parses and checks the file header: magic, length, version, class and
/// byte order, machine, in that order (the first failure is returned).
pub fn header(file: &[u8]) -> Result<Header, ElfError> {
    if !file.starts_with(&ELFMAGIC) {
        return Err(ElfError::NotElf);
    }
    let (Some(ident), Some(tail)) = (file.get(..EI_NIDENT), file.get(EI_NIDENT..EHDR_LEN)) else {
        return Err(ElfError::Truncated(file.len()));
    };
    let ident = match parse_ident::<LittleEndian>(ident) {
        Ok(ident) => ident,
        Err(ParseError::UnsupportedVersion((v, _))) => return Err(ElfError::Version(v as u8)),
        // The magic is checked above: the class or the byte order is not
        // one the crate knows, or big-endian.
        Err(_) => return Err(ElfError::NotElf64Le),
    };
    if ident.1 != Class::ELF64 {
        return Err(ElfError::NotElf64Le);
    }
    // The tail is exactly ELF64_EHDR_TAILSIZE bytes: this cannot fail.
    let header =
        FileHeader::parse_tail(ident, tail).map_err(|_| ElfError::Truncated(file.len()))?;
    if header.e_machine != EM_X86_64 {
        return Err(ElfError::Machine(header.e_machine));
    }
    Ok(header)
}

/// The program header table of `file` (whose header is `header`): entries
/// of [`PHDR_LEN`] bytes, `e_phnum` of them at `e_phoff`, all inside the
/// file. `e_phnum` is taken as it is (no PN_XNUM extension).
pub fn program_headers<'a>(
    file: &'a [u8],
    header: &Header,
) -> Result<ProgramHeaders<'a>, ElfError> {
    if usize::from(header.e_phentsize) != PHDR_LEN {
        return Err(ElfError::PhentSize(header.e_phentsize));
    }
    let start = usize::try_from(header.e_phoff).ok();
    let end = start.and_then(|s| s.checked_add(usize::from(header.e_phnum) * PHDR_LEN));
    let table = start
        .zip(end)
        .and_then(|(s, e)| file.get(s..e))
        .ok_or(ElfError::PhdrsOutsideFile)?;
    Ok(ProgramHeaders::new(LittleEndian, Class::ELF64, table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::elf::abi::{PF_R, PF_X, PT_LOAD};

    /// An x86-64 ET_EXEC with one PT_LOAD (R+X) of 16 bytes at 0x40_0000.
    fn file() -> [u8; 0x100] {
        let mut b = [0u8; 0x100];
        b[..4].copy_from_slice(&ELFMAGIC);
        b[4] = 2; // ELFCLASS64
        b[5] = 1; // ELFDATA2LSB
        b[6] = 1; // EV_CURRENT
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[24..32].copy_from_slice(&0x40_0000u64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let p = 64;
        b[p..p + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        b[p + 4..p + 8].copy_from_slice(&(PF_R | PF_X).to_le_bytes());
        b[p + 8..p + 16].copy_from_slice(&0xf0u64.to_le_bytes());
        b[p + 16..p + 24].copy_from_slice(&0x40_0000u64.to_le_bytes());
        b[p + 32..p + 40].copy_from_slice(&16u64.to_le_bytes());
        b[p + 40..p + 48].copy_from_slice(&16u64.to_le_bytes());
        b
    }

    #[test]
    fn a_good_file_reads_back() {
        let f = file();
        let h = header(&f).unwrap();
        assert_eq!((h.e_type, h.e_entry, h.e_phnum), (2, 0x40_0000, 1));
        let ph: [_; 1] = core::array::from_fn(|i| program_headers(&f, &h).unwrap().get(i).unwrap());
        assert_eq!(ph[0].p_type, PT_LOAD);
        assert_eq!(
            (ph[0].p_offset, ph[0].p_vaddr, ph[0].p_memsz),
            (0xf0, 0x40_0000, 16)
        );
        assert_eq!(program_headers(&f, &h).unwrap().iter().count(), 1);
    }

    #[test]
    fn each_bad_header_is_named() {
        assert_eq!(header(b""), Err(ElfError::NotElf));
        assert_eq!(header(b"\x7fEL"), Err(ElfError::NotElf));
        assert_eq!(header(b"#!/bin/sh\n"), Err(ElfError::NotElf));
        let f = file();
        assert_eq!(header(&f[..4]), Err(ElfError::Truncated(4)));
        assert_eq!(header(&f[..63]), Err(ElfError::Truncated(63)));
        let with = |i: usize, v: u8| {
            let mut g = f;
            g[i] = v;
            header(&g)
        };
        assert_eq!(with(4, 1), Err(ElfError::NotElf64Le)); // ELFCLASS32
        assert_eq!(with(4, 9), Err(ElfError::NotElf64Le));
        assert_eq!(with(5, 2), Err(ElfError::NotElf64Le)); // big-endian
        assert_eq!(with(5, 0), Err(ElfError::NotElf64Le));
        assert_eq!(with(6, 0), Err(ElfError::Version(0)));
        assert_eq!(with(18, 183), Err(ElfError::Machine(183)));
    }

    #[test]
    fn program_header_table_must_fit() {
        let f = file();
        let h = header(&f).unwrap();
        let bad = |h: Header| program_headers(&f, &h).err();
        assert_eq!(
            bad(Header {
                e_phentsize: 32,
                ..h
            }),
            Some(ElfError::PhentSize(32))
        );
        assert_eq!(
            bad(Header { e_phoff: 0xe0, ..h }),
            Some(ElfError::PhdrsOutsideFile)
        );
        assert_eq!(
            bad(Header {
                e_phoff: u64::MAX,
                ..h
            }),
            Some(ElfError::PhdrsOutsideFile)
        );
        assert_eq!(
            bad(Header { e_phnum: 4, ..h }),
            Some(ElfError::PhdrsOutsideFile)
        );
        assert_eq!(
            bad(Header {
                e_phnum: 0xffff,
                ..h
            }),
            Some(ElfError::PhdrsOutsideFile)
        );
        let none = program_headers(&f, &Header { e_phnum: 0, ..h }).unwrap();
        assert!(none.is_empty());
    }
}
