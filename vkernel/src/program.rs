//! Images made on the fly and the host's check of /init.
//!
//! `vkernel run -- PROG ARGS...` packs PROG as `/init` of a new cpio image
//! with its argv in `/etc/init.args` (each argument followed by a NUL),
//! which the guest kernel reads to start init. `--rootfs DIR` packs a host
//! directory the same way; with an image or a rootfs, the words after
//! `--` are the program inside it to run as init (`init=` on the command
//! line, argv in `/etc/init.args`), and `-e NAME=VALUE` goes to
//! `/etc/init.env`. Before booting, the host checks that an image's /init
//! exists and is an x86-64 ELF or a script, so the commonest mistakes get
//! one clear line instead of a guest-side failure.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use loader::cpio_writer::{pack, pack_filled, Member};
use vkernel_abi::cpio::Archive;
use vkernel_abi::elf::{self, ElfError};

use crate::cli::RunArgs;
use crate::error::Error;
use crate::images;
use crate::input::{read_regular, read_regular_into};

/// Why `bytes` cannot be a program for the guest, if it cannot: the
/// header checks the guest kernel's exec makes first (vkernel-abi's `elf`).
pub fn elf_problem(bytes: &[u8]) -> Option<&'static str> {
    match elf::header(bytes) {
        Ok(_) => None,
        Err(ElfError::NotElf) => Some("not an ELF executable"),
        Err(ElfError::Truncated(_)) => Some("not an ELF executable (its header is cut short)"),
        Err(ElfError::Version(_)) => Some("not an ELF executable (ELF version is not 1)"),
        Err(ElfError::NotElf64Le | ElfError::Machine(_)) => {
            Some("not an x86-64 executable (64-bit little-endian ELF for EM_X86_64)")
        }
        // The header checks do not look at the program headers.
        Err(ElfError::PhentSize(_) | ElfError::PhdrsOutsideFile) => None,
    }
}

/// An image to boot: its bytes, its name for messages, and the program
/// inside it to run as init, if the run names one.
pub type BootImage = (Cow<'static, [u8]>, String, Option<String>);

/// The image a run boots, its name for messages, and the program to run
/// as init inside it (`init=`), if the run names one:
/// - `-- PROG ARGS` alone: PROG packed as /init;
/// - `--image CPIO` or `--rootfs DIR`, with `-- PROG ARGS` naming a
///   program inside it; `--image busybox` is the image
///   `images/busybox/build.sh` makes, if there is no such file;
/// - nothing: the built-in default image.
///
/// `-e NAME=VALUE` adds `/etc/init.env`.
pub fn image_for(args: &RunArgs) -> Result<BootImage, Error> {
    let max = args.memory << 20;
    let (image, name): (Cow<'static, [u8]>, String) = match (&args.image, &args.rootfs) {
        (Some(_), Some(_)) => {
            return Err(Error::Setup(
                "give either --image or --rootfs, not both".into(),
            ))
        }
        (Some(p), None) => {
            let path = named_image(p);
            (
                Cow::Owned(read_regular("--image", &path, max)?),
                path.display().to_string(),
            )
        }
        // The directory is served, not packed: the image holds only the
        // init arguments and environment below.
        (None, Some(dir)) => (
            Cow::Owned(pack(&[])),
            format!("host directory {}", dir.display()),
        ),
        (None, None) => match args.program.first() {
            Some(prog) if args.env.is_empty() => {
                return Ok((
                    Cow::Owned(pack_program(Path::new(prog), &args.program, max)?),
                    format!("packed from {prog}"),
                    None,
                ))
            }
            Some(prog) => (
                Cow::Owned(pack_program(Path::new(prog), &args.program, max)?),
                format!("packed from {prog}"),
            ),
            None => (Cow::Borrowed(images::DEFAULT_IMAGE), "built-in".to_string()),
        },
    };
    let from_image = args.image.is_some() || args.rootfs.is_some();
    // A root file system without a program runs its shell.
    let shell = [String::from("/bin/sh")];
    let argv = if args.rootfs.is_some() && args.program.is_empty() && !args.test_kernel {
        &shell[..]
    } else if from_image {
        &args.program[..]
    } else {
        &[][..]
    };
    // TERM as the host has it, for a distribution's programs.
    let mut env = args.env.clone();
    if args.rootfs.is_some() && !env.iter().any(|e| e.starts_with("TERM=")) {
        if let Ok(term) = std::env::var("TERM") {
            if !term.is_empty() && !term.contains('\0') {
                env.push(format!("TERM={term}"));
            }
        }
    }
    let args_env = &env;
    if argv.is_empty() && args_env.is_empty() {
        return Ok((image, name, None));
    }
    if argv
        .first()
        .is_some_and(|p| p.contains(char::is_whitespace))
    {
        return Err(Error::Setup(format!(
            "program {:?}: a path with blanks cannot go on the kernel command line",
            argv[0]
        )));
    }
    let init_args = nul_list("argument", argv)?;
    for e in args_env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(Error::Setup(format!("-e {e:?}: expected NAME=VALUE")));
        }
    }
    let init_env = nul_list("-e", args_env)?;
    let mut extra = Vec::new();
    if !argv.is_empty() {
        extra.push(Member {
            name: "etc/init.args",
            mode: 0o100644,
            data: &init_args,
        });
    }
    if !args_env.is_empty() {
        extra.push(Member {
            name: "etc/init.env",
            mode: 0o100644,
            data: &init_env,
        });
    }
    let image = Cow::Owned(with_members(&image, &extra)?);
    Ok((image, name, argv.first().cloned()))
}

/// `--image NAME` where no file NAME exists: an image this tree's
/// `images/NAME/build.sh` made (`target/images/NAME.cpio`).
fn named_image(p: &Path) -> PathBuf {
    if p.exists() || p.components().count() != 1 {
        return p.to_path_buf();
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/images")
        .join(p)
        .with_extension("cpio");
    if built.exists() {
        built
    } else {
        p.to_path_buf()
    }
}

/// Strings as a list of NUL-terminated strings (init.args, init.env).
pub fn nul_list(what: &str, items: &[String]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for a in items {
        if a.is_empty() || a.contains('\0') {
            return Err(Error::Setup(format!(
                "{what} {a:?}: empty or containing NUL; it cannot be passed to the guest"
            )));
        }
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    Ok(out)
}

/// The host directories a run serves (`--rootfs` first, then each
/// `--volume`'s host side), checked: directories, guest paths absolute
/// and fit for the kernel command line; each with whether the guest may
/// write it (`:rw`; the root never).
pub fn host_dirs(args: &RunArgs) -> Result<Vec<(PathBuf, bool)>, Error> {
    let is_dir = |what: &str, dir: &Path| -> Result<(), Error> {
        let meta = std::fs::metadata(dir).map_err(|source| Error::ReadFile {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(Error::Setup(format!(
                "{what} {}: not a directory",
                dir.display()
            )));
        }
        Ok(())
    };
    let mut dirs = Vec::new();
    if let Some(root) = &args.rootfs {
        is_dir("--rootfs", root)?;
        dirs.push((root.clone(), false));
    }
    for v in &args.volume {
        let bad = |why: &str| Error::Setup(format!("--volume {v:?}: {why}"));
        let mut parts = v.split(':');
        let (host, guest) = match (parts.next(), parts.next()) {
            (Some(h), Some(g)) if !h.is_empty() => (h, g),
            _ => return Err(bad("expected HOST:GUEST[:ro|:rw]")),
        };
        let writable = match parts.next() {
            None | Some("ro") => false,
            Some("rw") => true,
            Some(_) => return Err(bad("expected :ro or :rw after HOST:GUEST")),
        };
        if parts.next().is_some() {
            return Err(bad("expected HOST:GUEST[:ro|:rw]"));
        }
        if !guest.starts_with('/')
            || guest.contains(|c: char| c.is_whitespace() || c == ',')
            || guest.split('/').any(|n| n == "." || n == "..")
        {
            return Err(bad(
                "the guest path must be absolute, without blanks, commas, . or ..",
            ));
        }
        is_dir("--volume", Path::new(host))?;
        dirs.push((PathBuf::from(host), writable));
    }
    Ok(dirs)
}

/// The image's members plus `extra` (which replace members of the same
/// name), packed again.
pub fn with_members(image: &[u8], extra: &[Member]) -> Result<Vec<u8>, Error> {
    let mut members = Vec::new();
    for e in Archive::new(image) {
        let e = e.map_err(|e| Error::Setup(format!("image: {e}")))?;
        if extra.iter().any(|x| x.name == e.name) {
            continue;
        }
        members.push(Member {
            name: e.name,
            mode: e.mode,
            data: e.data,
        });
    }
    members.extend(extra.iter().map(|m| Member {
        name: m.name,
        mode: m.mode,
        data: m.data,
    }));
    Ok(pack(&members))
}

/// Packs the host program `path` (a regular file of at most `max` bytes)
/// as /init with `argv` (argv[0] included).
pub fn pack_program(path: &Path, argv: &[String], max: u64) -> Result<Vec<u8>, Error> {
    let args = nul_list("argument", argv)?;
    let rest = [Member {
        name: "etc/init.args",
        mode: 0o100644,
        data: &args,
    }];
    // Read straight into the archive: a copy of a program of a megabyte
    // cost half a millisecond of a start here, mostly page faults.
    pack_filled(
        "init",
        0o100755,
        |out| {
            let start = out.len();
            // Room for the rest: two headers, the arguments, padding.
            let extra = 2 * 128 + args.len() + 16;
            read_regular_into("program", path, max, extra, out)?;
            match elf_problem(&out[start..]) {
                Some(problem) => Err(Error::Setup(format!("{}: {problem}", path.display()))),
                None => Ok(()),
            }
        },
        &rest,
    )
}

/// Checks an (already validated) image's /init: present, an x86-64 ELF
/// or a `#!` script.
pub fn check_init(image: &[u8]) -> Result<(), String> {
    let init = Archive::find(image, "init").ok_or_else(|| "no /init".to_string())?;
    // A symbolic link is the guest's to resolve (busybox's /init -> bin/sh).
    if init.mode & vkernel_abi::cpio::S_IFMT == 0o120000 {
        return Ok(());
    }
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

/// The directory `vkernel test` serves to the hostfs cases (see
/// `guest/hctest/src/hostfs.rs`), removed when dropped.
pub struct HostfsFixture {
    dir: PathBuf,
}

impl HostfsFixture {
    /// The served directory (`inside`; `outside/secret` lies beside it).
    pub fn root(&self) -> PathBuf {
        self.dir.join("inside")
    }

    /// The two writable volumes (`rw` holds `esc -> ../outside/secret`;
    /// `rw2` is empty), served after the root as volumes 1 and 2.
    pub fn writable(&self) -> [PathBuf; 2] {
        [self.dir.join("rw"), self.dir.join("rw2")]
    }

    /// Whether `outside/secret` still holds what it was made with (no
    /// case may change a file outside the served directories).
    pub fn outside_intact(&self) -> bool {
        std::fs::read(self.dir.join("outside/secret")).is_ok_and(|b| b == b"secret\n")
            && std::fs::read_dir(self.dir.join("outside")).is_ok_and(|d| d.count() == 1)
    }
}

impl Drop for HostfsFixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes the fixture in a fresh directory under the temporary directory.
pub fn hostfs_fixture() -> Result<HostfsFixture, Error> {
    let base = std::env::temp_dir();
    let io = |source: std::io::Error| Error::Io {
        what: "making the hostfs fixture",
        source,
    };
    let mut n = 0u32;
    let dir = loop {
        let d = base.join(format!("vkernel-hostfs-{}-{n}", std::process::id()));
        match std::fs::create_dir(&d) {
            Ok(()) => break d,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(io(e)),
        }
    };
    let fixture = HostfsFixture { dir: dir.clone() };
    let inside = dir.join("inside");
    std::fs::create_dir_all(inside.join("dir")).map_err(io)?;
    std::fs::create_dir(dir.join("outside")).map_err(io)?;
    std::fs::write(dir.join("outside/secret"), b"secret\n").map_err(io)?;
    std::fs::write(inside.join("file"), b"hello hostfs\n").map_err(io)?;
    std::fs::write(inside.join("dir/a"), b"").map_err(io)?;
    std::os::unix::fs::symlink("/etc/passwd", inside.join("abs")).map_err(io)?;
    std::os::unix::fs::symlink("../outside/secret", inside.join("rel")).map_err(io)?;
    for rw in fixture.writable() {
        std::fs::create_dir(&rw).map_err(io)?;
    }
    std::os::unix::fs::symlink("../outside/secret", dir.join("rw/esc")).map_err(io)?;
    let fifo = std::ffi::CString::new(inside.join("fifo").into_os_string().into_encoded_bytes())
        .map_err(|_| io(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) } != 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    Ok(fixture)
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
        elf[6] = 1;
        elf[18] = 62;
        std::fs::write(&prog, &elf).unwrap();
        let img = pack_program(&prog, &["./prog".into(), "a b".into()], 1 << 20).unwrap();
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
        arm[6] = 1;
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

    #[test]
    fn elf_problems_are_the_guest_exec_header_checks() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[6] = 1;
        elf[18] = 62;
        assert_eq!(elf_problem(&elf), None);
        assert_eq!(elf_problem(b"\x7fEL"), Some("not an ELF executable"));
        assert_eq!(
            elf_problem(&elf[..40]),
            Some("not an ELF executable (its header is cut short)")
        );
        let with = |i: usize, v: u8| {
            let mut e = elf.clone();
            e[i] = v;
            elf_problem(&e).unwrap_or("accepted")
        };
        assert_eq!(with(6, 0), "not an ELF executable (ELF version is not 1)");
        for (i, v) in [(4, 1), (5, 2), (18, 3)] {
            assert!(with(i, v).starts_with("not an x86-64 executable"), "{i}");
        }
    }
}
