//! Images made on the fly and the host's check of /init.
//!
//! `vkernel run -- PROG ARGS...` packs PROG as `/init` of a new cpio image
//! with its argv in `/etc/init.args` (each argument followed by a NUL),
//! which the guest kernel reads to start init. Before booting, the host
//! checks that an image's /init exists and is an x86-64 ELF, so the
//! commonest mistakes get one clear line instead of a guest-side failure.

use std::path::Path;

use loader::cpio_writer::{pack, Member};
use vkernel_abi::cpio::Archive;

use crate::error::Error;

/// Why `bytes` cannot be a program for the guest, if it cannot.
pub fn elf_problem(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return Some("not an ELF executable");
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    if bytes[4] != 2 || bytes[5] != 1 || machine != 62 {
        return Some("not an x86-64 executable (64-bit little-endian ELF for EM_X86_64)");
    }
    None
}

/// Packs the host program `path` as /init with `argv` (argv[0] included).
pub fn pack_program(path: &Path, argv: &[String]) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(problem) = elf_problem(&bytes) {
        return Err(Error::Setup(format!("{}: {problem}", path.display())));
    }
    let mut args = Vec::new();
    for a in argv {
        if a.is_empty() || a.contains('\0') {
            return Err(Error::Setup(format!(
                "argument {a:?}: empty or containing NUL; init.args cannot carry it"
            )));
        }
        args.extend_from_slice(a.as_bytes());
        args.push(0);
    }
    Ok(pack(&[
        Member {
            name: "init",
            mode: 0o100755,
            data: &bytes,
        },
        Member {
            name: "etc/init.args",
            mode: 0o100644,
            data: &args,
        },
    ]))
}

/// Checks an (already validated) image's /init: present, an x86-64 ELF
/// or a `#!` script.
pub fn check_init(image: &[u8]) -> Result<(), String> {
    let init = Archive::find(image, "init").ok_or_else(|| "no /init".to_string())?;
    if !init.is_file() {
        return Err("/init is not a regular file".into());
    }
    // A `#!` script runs its interpreter (the guest kernel resolves it).
    if init.data.starts_with(b"#!") {
        return Ok(());
    }
    match elf_problem(init.data) {
        Some(p) => Err(format!("/init is {p}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_program_is_init_with_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("prog");
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 62;
        std::fs::write(&prog, &elf).unwrap();
        let img = pack_program(&prog, &["./prog".into(), "a b".into()]).unwrap();
        assert_eq!(Archive::find(&img, "init").unwrap().data, &elf[..]);
        assert_eq!(
            Archive::find(&img, "etc/init.args").unwrap().data,
            b"./prog\0a b\0"
        );
        assert!(check_init(&img).is_ok());
    }

    #[test]
    fn bad_inits_are_named() {
        let none = pack(&[]);
        assert_eq!(check_init(&none).unwrap_err(), "no /init");
        let text = pack(&[Member {
            name: "init",
            mode: 0o100755,
            data: b"echo hi\n",
        }]);
        assert_eq!(
            check_init(&text).unwrap_err(),
            "/init is not an ELF executable"
        );
        let mut arm = vec![0u8; 64];
        arm[..4].copy_from_slice(b"\x7fELF");
        arm[4] = 2;
        arm[5] = 1;
        arm[18] = 183;
        let arm_img = pack(&[Member {
            name: "init",
            mode: 0o100755,
            data: &arm,
        }]);
        assert!(check_init(&arm_img)
            .unwrap_err()
            .contains("not an x86-64 executable"));
    }
}
