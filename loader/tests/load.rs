//! Loader checks: every bad kernel and image is refused with a sentence
//! naming the file and the problem, and nothing is written before.

use loader::cpio_writer::{pack, Member};
use loader::{load, Blob, LoadError};
use vkernel_abi::{cpio::Archive, layout, BootInfo, Pod, BOOT_INFO_MAGIC};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM: u64 = 16 << 20;

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap()
}

/// A minimal x86-64 ET_EXEC with one PT_LOAD of `code` at `vaddr`.
fn elf(vaddr: u64, code: &[u8]) -> Vec<u8> {
    elf_with_bss(vaddr, code, 0x100)
}

/// The same, its segment `bss_len` bytes longer in memory than in the file.
fn elf_with_bss(vaddr: u64, code: &[u8], bss_len: u64) -> Vec<u8> {
    let mut b = vec![0u8; 0x1000];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little endian
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&vaddr.to_le_bytes()); // entry
    b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&1u16.to_le_bytes());
    let p = 64;
    b[p..p + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    b[p + 4..p + 8].copy_from_slice(&5u32.to_le_bytes());
    b[p + 8..p + 16].copy_from_slice(&0x1000u64.to_le_bytes()); // offset
    b[p + 16..p + 24].copy_from_slice(&vaddr.to_le_bytes());
    b[p + 24..p + 32].copy_from_slice(&vaddr.to_le_bytes());
    b[p + 32..p + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
    b[p + 40..p + 48].copy_from_slice(&(code.len() as u64 + bss_len).to_le_bytes());
    b.extend_from_slice(code);
    b
}

fn image() -> Vec<u8> {
    pack(&[Member {
        name: "init",
        mode: 0o100755,
        data: b"hello",
    }])
}

fn try_load(kernel: &[u8], image: &[u8]) -> Result<loader::Loaded, LoadError> {
    load(
        &mem(),
        RAM,
        1 << 20,
        &Blob {
            name: "k.elf".into(),
            bytes: kernel,
        },
        &Blob {
            name: "i.cpio".into(),
            bytes: image,
        },
        "a=b",
    )
}

fn kernel_err(kernel: &[u8]) -> String {
    let e = try_load(kernel, &image()).unwrap_err();
    assert!(matches!(e, LoadError::BadKernel { .. }), "{e}");
    let s = e.to_string();
    assert!(s.starts_with("kernel k.elf: "), "{s}");
    s
}

#[test]
fn good_kernel_and_image_load_with_boot_info() {
    let m = mem();
    let k = elf(0x20_0000, &[0x90, 0xf4]);
    let img = image();
    let l = load(
        &m,
        RAM,
        1 << 20,
        &Blob {
            name: "k".into(),
            bytes: &k,
        },
        &Blob {
            name: "i".into(),
            bytes: &img,
        },
        "exit=3",
    )
    .unwrap();
    assert_eq!(l.entry, 0x20_0000);
    let mut code = [0u8; 2];
    m.read_slice(&mut code, GuestAddress(0x20_0000)).unwrap();
    assert_eq!(code, [0x90, 0xf4]);
    let mut bi = [0u8; std::mem::size_of::<BootInfo>()];
    m.read_slice(&mut bi, GuestAddress(layout::BOOT_INFO_ADDR))
        .unwrap();
    let bi = BootInfo::from_bytes(&bi).unwrap();
    assert_eq!(bi.magic, BOOT_INFO_MAGIC);
    assert_eq!(bi.mem_bytes, RAM);
    assert_eq!(bi.image_addr % 4096, 0);
    assert!(bi.image_addr >= 0x20_0000 + 0x102);
    let mut img_back = vec![0u8; bi.image_len as usize];
    m.read_slice(&mut img_back, GuestAddress(bi.image_addr))
        .unwrap();
    assert_eq!(img_back, img);
    let mut cmd = vec![0u8; bi.cmdline_len as usize];
    m.read_slice(&mut cmd, GuestAddress(bi.cmdline_addr))
        .unwrap();
    assert_eq!(cmd, b"exit=3");
}

#[test]
fn the_bss_reads_as_zero_over_old_contents_and_nothing_past_it_is_touched() {
    let m = mem();
    // Memory that held something: the loader may not assume zeroes.
    m.write_slice(&vec![0xffu8; 0x10000], GuestAddress(0x20_0000))
        .unwrap();
    let bss_len = 0x2345; // over page boundaries, ending inside a page
    let k = elf_with_bss(0x20_0000, &[0x90, 0xf4], bss_len);
    load(
        &m,
        RAM,
        1 << 20,
        &Blob {
            name: "k".into(),
            bytes: &k,
        },
        &Blob {
            name: "i".into(),
            bytes: &image(),
        },
        "",
    )
    .unwrap();
    let mut seg = vec![0u8; 2 + bss_len as usize + 1];
    m.read_slice(&mut seg, GuestAddress(0x20_0000)).unwrap();
    assert_eq!(seg[..2], [0x90, 0xf4]);
    assert!(seg[2..2 + bss_len as usize].iter().all(|&b| b == 0));
    assert_eq!(seg[2 + bss_len as usize], 0xff, "the byte after the bss");
}

#[test]
fn not_an_elf() {
    assert!(kernel_err(b"#!/bin/sh\necho hi\n").contains("not an ELF"));
    assert!(kernel_err(b"").contains("not an ELF"));
}

#[test]
fn truncated_header() {
    assert!(kernel_err(&elf(0x20_0000, &[0x90])[..40]).contains("truncated"));
}

#[test]
fn not_64_bit() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[4] = 1;
    assert!(kernel_err(&k).contains("64-bit"));
}

#[test]
fn not_x86_64() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[18..20].copy_from_slice(&183u16.to_le_bytes()); // aarch64
    let e = kernel_err(&k);
    assert!(e.contains("not x86-64"), "{e}");
}

#[test]
fn not_an_executable() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    assert!(kernel_err(&k).contains("ET_EXEC"));
}

#[test]
fn not_little_endian() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[5] = 2; // ELFDATA2MSB
    assert!(kernel_err(&k).contains("64-bit little-endian"));
}

#[test]
fn unknown_elf_version() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[6] = 0;
    let e = kernel_err(&k);
    assert!(e.contains("ELF version is 0, not 1"), "{e}");
}

#[test]
fn bad_program_header_size() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[54..56].copy_from_slice(&64u16.to_le_bytes());
    let e = kernel_err(&k);
    assert!(e.contains("program header size 64, expected 56"), "{e}");
}

#[test]
fn program_headers_outside_file() {
    let mut k = elf(0x20_0000, &[0x90]);
    let near_end = k.len() as u64 - 8;
    k[32..40].copy_from_slice(&near_end.to_le_bytes()); // e_phoff
    assert!(kernel_err(&k).contains("program headers lie outside the file"));
    let mut k = elf(0x20_0000, &[0x90]);
    k[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(kernel_err(&k).contains("program headers lie outside the file"));
    let mut k = elf(0x20_0000, &[0x90]);
    k[56..58].copy_from_slice(&0xffffu16.to_le_bytes()); // e_phnum
    assert!(kernel_err(&k).contains("program headers lie outside the file"));
}

#[test]
fn dynamically_linked() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[64..68].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
    assert!(kernel_err(&k).contains("dynamically linked (PT_INTERP)"));
}

#[test]
fn paddr_differs_from_vaddr() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[64 + 24..64 + 32].copy_from_slice(&0x30_0000u64.to_le_bytes());
    let e = kernel_err(&k);
    assert!(
        e.contains("segment 0 has paddr 0x300000 != vaddr 0x200000"),
        "{e}"
    );
}

#[test]
fn file_size_exceeds_memory_size() {
    let mut k = elf(0x20_0000, &[0x90; 16]);
    k[64 + 40..64 + 48].copy_from_slice(&8u64.to_le_bytes()); // p_memsz
    assert!(kernel_err(&k).contains("segment 0: file size exceeds memory size"));
}

#[test]
fn no_loadable_segments() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[64..68].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
    assert!(kernel_err(&k).contains("no loadable segments"));
    let mut k = elf(0x20_0000, &[0x90]);
    k[56..58].copy_from_slice(&0u16.to_le_bytes()); // e_phnum
    assert!(kernel_err(&k).contains("no loadable segments"));
}

#[test]
fn segment_outside_memory() {
    assert!(kernel_err(&elf(RAM - 0x10, &[0x90; 32])).contains("outside guest memory"));
    assert!(kernel_err(&elf(0x1000, &[0x90])).contains("outside guest memory"));
    assert!(kernel_err(&elf(u64::MAX - 8, &[0x90])).contains("outside guest memory"));
    // In the pool region: still refused, the kernel lives in RAM.
    assert!(kernel_err(&elf(layout::POOL_BASE, &[0x90])).contains("outside guest memory"));
}

#[test]
fn segment_outside_file() {
    let k = elf(0x20_0000, &[0x90; 64]);
    assert!(kernel_err(&k[..0x1010]).contains("segment 0 lies outside the file"));
    let mut k = elf(0x20_0000, &[0x90]);
    k[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes()); // p_offset
    assert!(kernel_err(&k).contains("segment 0 lies outside the file"));
}

#[test]
fn entry_outside_segments() {
    let mut k = elf(0x20_0000, &[0x90]);
    k[24..32].copy_from_slice(&0x30_0000u64.to_le_bytes());
    assert!(kernel_err(&k).contains("entry point"));
}

fn image_err(img: &[u8]) -> String {
    let e = try_load(&elf(0x20_0000, &[0x90]), img).unwrap_err();
    assert!(matches!(e, LoadError::BadImage { .. }), "{e}");
    let s = e.to_string();
    assert!(s.starts_with("image i.cpio: "), "{s}");
    s
}

#[test]
fn bad_images() {
    let img = image();
    assert!(image_err(&img[..img.len() - 200]).contains("truncated"));
    assert!(image_err(b"this is not a cpio archive at all, it is text, long enough for a header.......................................").contains("magic"));
    assert!(image_err(b"").contains("TRAILER"));
    let mut bad_hex = img.clone();
    bad_hex[20] = b'z';
    assert!(image_err(&bad_hex).contains("malformed"));
}

#[test]
fn image_too_big_for_memory() {
    let big = vec![7u8; RAM as usize];
    let img = pack(&[Member {
        name: "big",
        mode: 0o100644,
        data: &big,
    }]);
    assert!(image_err(&img).contains("raise --memory"));
}

#[test]
fn cmdline_too_long() {
    let m = mem();
    let k = elf(0x20_0000, &[0x90]);
    let img = image();
    let long = "x".repeat(5000);
    let e = load(
        &m,
        RAM,
        0,
        &Blob {
            name: "k".into(),
            bytes: &k,
        },
        &Blob {
            name: "i".into(),
            bytes: &img,
        },
        &long,
    )
    .unwrap_err();
    assert!(matches!(e, LoadError::CmdlineTooLong(5000)));
}

#[test]
fn writer_round_trips_through_parser() {
    let img = pack(&[
        Member {
            name: "init",
            mode: 0o100755,
            data: b"abc",
        },
        Member {
            name: "etc/motd",
            mode: 0o100644,
            data: b"hello world\n",
        },
        Member {
            name: "empty",
            mode: 0o100644,
            data: b"",
        },
    ]);
    let entries: Vec<_> = Archive::new(&img).map(Result::unwrap).collect();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1].name, "etc/motd");
    assert_eq!(entries[1].data, b"hello world\n");
    assert!(entries[0].is_file());
    assert_eq!(Archive::find(&img, "/init").unwrap().data, b"abc");
    assert_eq!(Archive::find(&img, "./etc/motd").unwrap().data.len(), 12);
}

#[test]
fn a_member_filled_in_place_packs_as_a_copied_one() {
    let rest = [Member {
        name: "etc/init.args",
        mode: 0o100644,
        data: b"./prog\0",
    }];
    // Lengths around the 4-byte padding, the 8-digit size field's edges.
    for data in [&b""[..], b"a", b"abcde", &[7u8; 4099][..]] {
        let copied = pack(&[
            Member {
                name: "init",
                mode: 0o100755,
                data,
            },
            Member { ..rest[0] },
        ]);
        let filled = loader::cpio_writer::pack_filled(
            "init",
            0o100755,
            |out| -> Result<(), ()> {
                out.extend_from_slice(data);
                Ok(())
            },
            &rest,
        )
        .unwrap();
        assert_eq!(filled, copied, "{} bytes", data.len());
    }
    // A failing fill is the pack's error.
    let failed = loader::cpio_writer::pack_filled("init", 0o100755, |_| Err("unreadable"), &rest);
    assert_eq!(failed, Err("unreadable"));
}
