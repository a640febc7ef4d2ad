//! The hostfs hypercalls' cases (part of `test=hypercalls`). `vkernel
//! test` serves a fixture directory as volume 0:
//!
//! ```text
//! file        "hello hostfs\n"
//! dir/a       ""
//! abs   ->    /etc/passwd           (absolute: outside if followed)
//! rel   ->    ../outside/secret     (relative: climbs out if followed)
//! fifo        a FIFO (never opened on the host)
//! ```
//!
//! and `../outside/secret` beside it, which nothing may reach; volumes
//! 1 and 2 are writable (`-v DIR:/rwN:rw`), volume 1 holding
//! `esc -> ../outside/secret` (planted: never written through), volume 2
//! empty. The host checks afterwards that `outside` did not change.
//! Without the fixture (`--append test=hypercalls` alone) the cases are
//! skipped.

use guestlib::hypercall::invoke;
use vkernel_abi::{
    Call, Errno, HostfsStat, KernelIovec, HOSTFS_MAX_HANDLES, HOSTFS_REMOVEDIR, HOSTFS_SET_MODE,
    HOSTFS_SET_MTIME, HOSTFS_SET_SIZE,
};

type R = Result<i64, Errno>;

fn walk(h: u64, name: &[u8]) -> R {
    invoke(Call::HostfsWalk {
        handle: h,
        name: name.as_ptr() as u64,
        name_len: name.len() as u64,
    })
}

fn stat(h: u64) -> Result<HostfsStat, Errno> {
    let mut st = HostfsStat::default();
    invoke(Call::HostfsGetattr {
        handle: h,
        buf: &mut st as *mut HostfsStat as u64,
    })?;
    Ok(st)
}

fn read(h: u64, buf: &mut [u8], off: u64) -> R {
    invoke(Call::HostfsRead {
        handle: h,
        buf: buf.as_mut_ptr() as u64,
        len: buf.len() as u64,
        off,
    })
}

fn clunk(h: u64) -> R {
    invoke(Call::HostfsClunk { handle: h })
}

const S_IFMT: u64 = 0o170000;

/// The cases; `check(desc, ok, detail)` records one.
pub fn cases(mem_bytes: u64, check: &mut dyn FnMut(&str, bool, R)) {
    let root = invoke(Call::HostfsRoot { volume: 0 });
    let Ok(r) = root else {
        check(
            "hostfs: no fixture served (skipped)",
            root == Err(Errno::ENOENT),
            root,
        );
        return;
    };
    let r = r as u64;
    check("hostfs: root(0) -> a handle", true, root);
    let x = invoke(Call::HostfsRoot { volume: 99 });
    check("hostfs: root(99) -> ENOENT", x == Err(Errno::ENOENT), x);

    // A regular file.
    let f = walk(r, b"file");
    check("hostfs: walk file -> a handle", f.is_ok(), f);
    let f = f.unwrap_or(-1) as u64;
    let st = stat(f);
    let ok = st.is_ok_and(|s| s.size == 13 && s.mode & S_IFMT == 0o100000);
    check(
        "hostfs: getattr file -> regular, 13 bytes",
        ok,
        st.map(|s| s.size as i64),
    );
    let mut buf = [0u8; 64];
    let n = read(f, &mut buf, 0);
    check(
        "hostfs: read file -> its 13 bytes",
        n == Ok(13) && &buf[..13] == b"hello hostfs\n",
        n,
    );
    let n = read(f, &mut buf, 6);
    check(
        "hostfs: read at 6 -> 7 bytes",
        n == Ok(7) && &buf[..7] == b"hostfs\n",
        n,
    );
    let n = read(f, &mut buf, 1 << 40);
    check("hostfs: read past the end -> 0", n == Ok(0), n);
    let n = read(f, &mut buf, u64::MAX);
    check(
        "hostfs: read at an offset past i64 -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    // Buffers outside guest RAM.
    for (desc, addr, len) in [
        (
            "hostfs: read into a buffer across the end of RAM -> EFAULT",
            mem_bytes - 4,
            64,
        ),
        (
            "hostfs: read into a buffer past RAM -> EFAULT",
            mem_bytes + 4096,
            64,
        ),
        (
            "hostfs: read into a wrapping buffer -> EFAULT",
            u64::MAX - 8,
            64,
        ),
    ] {
        let n = invoke(Call::HostfsRead {
            handle: f,
            buf: addr,
            len,
            off: 0,
        });
        check(desc, n == Err(Errno::EFAULT), n);
    }
    let n = invoke(Call::HostfsGetattr {
        handle: f,
        buf: mem_bytes - 8,
    });
    check(
        "hostfs: getattr into a buffer past RAM -> EFAULT",
        n == Err(Errno::EFAULT),
        n,
    );
    let n = walk(f, b"x");
    check(
        "hostfs: walk from a file -> ENOTDIR",
        n == Err(Errno::ENOTDIR),
        n,
    );

    // readv: one range into several buffers.
    let mut a = [0u8; 5];
    let mut b = [0u8; 64];
    let iov = [
        KernelIovec {
            base: a.as_mut_ptr() as u64,
            len: 5,
        },
        KernelIovec {
            base: b.as_mut_ptr() as u64,
            len: 64,
        },
    ];
    let readv = |h: u64, iov: u64, iovcnt: u64, off: u64| {
        invoke(Call::HostfsReadv {
            handle: h,
            iov,
            iovcnt,
            off,
        })
    };
    let n = readv(f, iov.as_ptr() as u64, 2, 0);
    check(
        "hostfs: readv fills each buffer in turn",
        n == Ok(13) && &a == b"hello" && &b[..8] == b" hostfs\n",
        n,
    );
    for (desc, iovcnt) in [
        ("hostfs: readv of 0 buffers -> EINVAL", 0),
        ("hostfs: readv of 257 buffers -> EINVAL", 257),
    ] {
        let n = readv(f, iov.as_ptr() as u64, iovcnt, 0);
        check(desc, n == Err(Errno::EINVAL), n);
    }
    let n = readv(f, mem_bytes - 8, 1, 0);
    check(
        "hostfs: readv with the array outside RAM -> EFAULT",
        n == Err(Errno::EFAULT),
        n,
    );
    let outside = [KernelIovec {
        base: mem_bytes - 16,
        len: 64,
    }];
    let n = readv(f, outside.as_ptr() as u64, 1, 0);
    check(
        "hostfs: readv into a buffer outside RAM -> EFAULT",
        n == Err(Errno::EFAULT),
        n,
    );
    let huge = [
        KernelIovec {
            base: 0,
            len: 1 << 20,
        },
        KernelIovec { base: 0, len: 4096 },
    ];
    let n = readv(f, huge.as_ptr() as u64, 2, 0);
    check(
        "hostfs: readv of more than 1 MiB -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = readv(r, iov.as_ptr() as u64, 2, 0);
    check(
        "hostfs: readv of a directory -> EISDIR",
        n == Err(Errno::EISDIR),
        n,
    );

    // Names.
    for (desc, name, want) in [
        (
            "hostfs: walk a name with / -> EINVAL",
            &b"dir/a"[..],
            Errno::EINVAL,
        ),
        (
            "hostfs: walk .. at the root -> EINVAL",
            b"..",
            Errno::EINVAL,
        ),
        ("hostfs: walk . -> EINVAL", b".", Errno::EINVAL),
        (
            "hostfs: walk a name with NUL -> EINVAL",
            b"fi\0le",
            Errno::EINVAL,
        ),
        ("hostfs: walk an empty name -> ENOENT", b"", Errno::ENOENT),
        (
            "hostfs: walk a missing name -> ENOENT",
            b"nothing",
            Errno::ENOENT,
        ),
        (
            "hostfs: walk /etc/passwd as a name -> EINVAL",
            b"/etc/passwd",
            Errno::EINVAL,
        ),
    ] {
        let n = walk(r, name);
        check(desc, n == Err(want), n);
    }
    let long = [b'a'; 256];
    let n = walk(r, &long);
    check(
        "hostfs: walk a 256-byte name -> ENAMETOOLONG",
        n == Err(Errno::ENAMETOOLONG),
        n,
    );
    let n = invoke(Call::HostfsWalk {
        handle: r,
        name: mem_bytes - 2,
        name_len: 4,
    });
    check(
        "hostfs: walk a name outside RAM -> EFAULT",
        n == Err(Errno::EFAULT),
        n,
    );

    // Unknown handles.
    for h in [4095u64, 1 << 20, u64::MAX] {
        let n = walk(h, b"file");
        check(
            "hostfs: walk from an unknown handle -> EBADF",
            n == Err(Errno::EBADF),
            n,
        );
        let n = read(h, &mut buf, 0);
        check(
            "hostfs: read an unknown handle -> EBADF",
            n == Err(Errno::EBADF),
            n,
        );
        let n = clunk(h);
        check(
            "hostfs: clunk an unknown handle -> EBADF",
            n == Err(Errno::EBADF),
            n,
        );
    }

    // Symbolic links are opened as themselves, never followed.
    for (name, target) in [
        (&b"abs"[..], &b"/etc/passwd"[..]),
        (b"rel", b"../outside/secret"),
    ] {
        let l = walk(r, name);
        let l = l.unwrap_or(-1) as u64;
        let st = stat(l);
        check(
            "hostfs: walk a symlink -> the link itself",
            st.is_ok_and(|s| s.mode & S_IFMT == 0o120000),
            st.map(|s| s.mode as i64),
        );
        let n = invoke(Call::HostfsReadlink {
            handle: l,
            buf: buf.as_mut_ptr() as u64,
            len: buf.len() as u64,
        });
        check(
            "hostfs: readlink -> the target as written",
            n == Ok(target.len() as i64) && &buf[..target.len()] == target,
            n,
        );
        let n = read(l, &mut buf, 0);
        check(
            "hostfs: read a symlink (not followed) -> EINVAL",
            n == Err(Errno::EINVAL),
            n,
        );
        let n = walk(l, b"secret");
        check(
            "hostfs: walk through a symlink -> ENOTDIR",
            n == Err(Errno::ENOTDIR),
            n,
        );
        let _ = clunk(l);
    }

    // Directories.
    let n = read(r, &mut buf, 0);
    check(
        "hostfs: read a directory as a file -> EISDIR",
        n == Err(Errno::EISDIR),
        n,
    );
    let mut dents = [0u8; 4096];
    let n = invoke(Call::HostfsReaddir {
        handle: r,
        cookie: 0,
        buf: dents.as_mut_ptr() as u64,
        len: dents.len() as u64,
    });
    let has = |name: &[u8]| {
        dents
            .windows(name.len() + 1)
            .any(|w| &w[..name.len()] == name && w[name.len()] == 0)
    };
    check(
        "hostfs: readdir root -> file, dir, abs, rel, fifo",
        n.is_ok_and(|n| n > 0) && has(b"file") && has(b"dir") && has(b"fifo") && has(b"rel"),
        n,
    );
    let n = invoke(Call::HostfsReaddir {
        handle: r,
        cookie: 0,
        buf: dents.as_mut_ptr() as u64,
        len: 8,
    });
    check(
        "hostfs: readdir into 8 bytes -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = invoke(Call::HostfsReaddir {
        handle: f,
        cookie: 0,
        buf: dents.as_mut_ptr() as u64,
        len: dents.len() as u64,
    });
    check(
        "hostfs: readdir a file -> ENOTDIR",
        n == Err(Errno::ENOTDIR),
        n,
    );
    let n = invoke(Call::HostfsReaddir {
        handle: r,
        cookie: 0,
        buf: mem_bytes - 16,
        len: 4096,
    });
    check(
        "hostfs: readdir into a buffer past RAM -> EFAULT",
        n == Err(Errno::EFAULT),
        n,
    );

    // A FIFO: a handle (the walk did not block), attributes, no I/O.
    let p = walk(r, b"fifo");
    let p = p.unwrap_or(-1) as u64;
    let st = stat(p);
    check(
        "hostfs: walk a fifo -> a handle, S_IFIFO",
        st.is_ok_and(|s| s.mode & S_IFMT == 0o010000),
        st.map(|s| s.mode as i64),
    );
    let n = read(p, &mut buf, 0);
    check(
        "hostfs: read a fifo -> EINVAL (never opened)",
        n == Err(Errno::EINVAL),
        n,
    );
    let _ = clunk(p);

    // Clunk.
    let n = clunk(f);
    check("hostfs: clunk -> 0", n == Ok(0), n);
    let n = clunk(f);
    check("hostfs: clunk twice -> EBADF", n == Err(Errno::EBADF), n);
    let n = read(f, &mut buf, 0);
    check(
        "hostfs: read a clunked handle -> EBADF",
        n == Err(Errno::EBADF),
        n,
    );

    // The table is bounded.
    let mut got = 0usize;
    let mut last = Ok(0);
    let mut handles = [0u16; HOSTFS_MAX_HANDLES];
    while got < HOSTFS_MAX_HANDLES {
        last = walk(r, b"dir");
        match last {
            Ok(h) => {
                handles[got] = h as u16;
                got += 1;
            }
            Err(_) => break,
        }
    }
    check(
        "hostfs: walks past the handle limit -> EMFILE",
        last == Err(Errno::EMFILE) && got < HOSTFS_MAX_HANDLES,
        last,
    );
    let mut all = true;
    for h in &handles[..got] {
        all &= clunk(*h as u64) == Ok(0);
    }
    check("hostfs: every handle clunks", all, Ok(got as i64));
    let n = walk(r, b"file");
    check("hostfs: a walk works again after clunks", n.is_ok(), n);
    if let Ok(h) = n {
        let _ = clunk(h as u64);
    }
    let n = clunk(r);
    check("hostfs: clunk the root -> 0", n == Ok(0), n);
    write_cases(mem_bytes, check);
}

fn create(dir: u64, name: &[u8], mode: u64) -> R {
    invoke(Call::HostfsCreate {
        dir,
        name: name.as_ptr() as u64,
        name_len: name.len() as u64,
        mode,
    })
}

fn writev(h: u64, bufs: &[&[u8]], off: u64) -> R {
    let mut iov = [KernelIovec::default(); 4];
    for (v, b) in iov.iter_mut().zip(bufs) {
        *v = KernelIovec {
            base: b.as_ptr() as u64,
            len: b.len() as u64,
        };
    }
    invoke(Call::HostfsWritev {
        handle: h,
        iov: iov.as_ptr() as u64,
        iovcnt: bufs.len() as u64,
        off,
    })
}

fn unlink(dir: u64, name: &[u8], flags: u64) -> R {
    invoke(Call::HostfsUnlink {
        dir,
        name: name.as_ptr() as u64,
        name_len: name.len() as u64,
        flags,
    })
}

fn rename(olddir: u64, old: &[u8], newdir: u64, new: &[u8], flags: u64) -> R {
    invoke(Call::HostfsRename {
        olddir,
        oldname: old.as_ptr() as u64,
        oldname_len: old.len() as u64,
        newdir,
        newname: new.as_ptr() as u64,
        newname_len: new.len() as u64,
        flags,
    })
}

fn link(h: u64, dir: u64, name: &[u8]) -> R {
    invoke(Call::HostfsLink {
        handle: h,
        dir,
        name: name.as_ptr() as u64,
        name_len: name.len() as u64,
    })
}

fn setattr(h: u64, valid: u64, mode: u64, size: u64) -> R {
    invoke(Call::HostfsSetattr {
        handle: h,
        valid,
        mode,
        size,
        atime_ns: 0,
        mtime_ns: 1_234_567_890_000_000_500,
    })
}

const S_IFREG: u64 = 0o100000;
const S_IFDIR: u64 = 0o040000;

/// The writing calls (29-37) on the writable volumes 1 and 2, and their
/// refusals on the read-only volume 0.
fn write_cases(mem_bytes: u64, check: &mut dyn FnMut(&str, bool, R)) {
    let (Ok(w), Ok(w2), Ok(r)) = (
        invoke(Call::HostfsRoot { volume: 1 }),
        invoke(Call::HostfsRoot { volume: 2 }),
        invoke(Call::HostfsRoot { volume: 0 }),
    ) else {
        check("hostfs: no writable volumes served (skipped)", true, Ok(0));
        return;
    };
    let (w, w2, r) = (w as u64, w2 as u64, r as u64);

    // create + writev + read back.
    let f = create(w, b"new", S_IFREG | 0o640);
    check("hostfs: create a file -> a handle", f.is_ok(), f);
    let f = f.unwrap_or(-1) as u64;
    let st = stat(f);
    check(
        "hostfs: the new file is regular, mode 0640, empty",
        st.is_ok_and(|s| s.mode == S_IFREG | 0o640 && s.size == 0),
        st.map(|s| s.mode as i64),
    );
    let n = writev(f, &[b"hello ", b"rw\n"], 0);
    check("hostfs: writev gathers the buffers -> 9", n == Ok(9), n);
    let mut buf = [0u8; 64];
    let n = read(f, &mut buf, 0);
    check(
        "hostfs: read what was written",
        n == Ok(9) && &buf[..9] == b"hello rw\n",
        n,
    );
    let n = writev(f, &[b"R"], 6);
    let m = read(f, &mut buf, 0);
    check(
        "hostfs: writev at an offset",
        n == Ok(1) && m == Ok(9) && &buf[..9] == b"hello Rw\n",
        n,
    );
    let n = create(w, b"new", S_IFREG | 0o644);
    check(
        "hostfs: create an existing name -> EEXIST",
        n == Err(Errno::EEXIST),
        n,
    );
    // A planted link is never followed: not created through, not written.
    let n = create(w, b"esc", S_IFREG | 0o644);
    check(
        "hostfs: create over a planted symlink -> EEXIST (not followed)",
        n == Err(Errno::EEXIST),
        n,
    );
    let l = walk(w, b"esc").unwrap_or(-1) as u64;
    let n = writev(l, &[b"pwned"], 0);
    check(
        "hostfs: writev a symlink -> EINVAL (never followed)",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = setattr(l, HOSTFS_SET_SIZE, 0, 0);
    check(
        "hostfs: truncate a symlink -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = setattr(l, HOSTFS_SET_MODE, 0o777, 0);
    check(
        "hostfs: chmod a symlink -> EOPNOTSUPP (its target untouched)",
        n == Err(Errno::EOPNOTSUPP),
        n,
    );
    let _ = clunk(l);

    // Names.
    let long = [b'a'; 256];
    for (desc, name, want) in [
        ("hostfs: create a/b -> EINVAL", &b"a/b"[..], Errno::EINVAL),
        ("hostfs: create .. -> EINVAL", b"..", Errno::EINVAL),
        ("hostfs: create . -> EINVAL", b".", Errno::EINVAL),
        (
            "hostfs: create a name with NUL -> EINVAL",
            b"a\0b",
            Errno::EINVAL,
        ),
        ("hostfs: create an empty name -> ENOENT", b"", Errno::ENOENT),
        (
            "hostfs: create a 256-byte name -> ENAMETOOLONG",
            &long[..],
            Errno::ENAMETOOLONG,
        ),
        (
            "hostfs: create ../outside/x -> EINVAL",
            b"../outside/x",
            Errno::EINVAL,
        ),
    ] {
        let n = create(w, name, S_IFREG | 0o644);
        check(desc, n == Err(want), n);
    }
    let n = invoke(Call::HostfsCreate {
        dir: w,
        name: mem_bytes - 2,
        name_len: 4,
        mode: S_IFREG | 0o644,
    });
    check(
        "hostfs: create with a name outside RAM -> EFAULT",
        n == Err(Errno::EFAULT),
        n,
    );
    let n = create(w, b"dev", 0o020000 | 0o666);
    check(
        "hostfs: create a device node -> EPERM (never made)",
        n == Err(Errno::EPERM),
        n,
    );
    let n = create(w, b"odd", 0o170000 | 0o644);
    check(
        "hostfs: create an unknown type -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = create(f, b"x", S_IFREG | 0o644);
    check(
        "hostfs: create in a file -> ENOTDIR",
        n == Err(Errno::ENOTDIR),
        n,
    );
    let n = create(4095, b"x", S_IFREG | 0o644);
    check(
        "hostfs: create in an unknown handle -> EBADF",
        n == Err(Errno::EBADF),
        n,
    );

    // The read-only volume.
    let n = create(r, b"x", S_IFREG | 0o644);
    check(
        "hostfs: create on the read-only volume -> EROFS",
        n == Err(Errno::EROFS),
        n,
    );
    let ro = walk(r, b"file").unwrap_or(-1) as u64;
    let n = writev(ro, &[b"x"], 0);
    check(
        "hostfs: writev on the read-only volume -> EROFS",
        n == Err(Errno::EROFS),
        n,
    );
    let n = setattr(ro, HOSTFS_SET_SIZE, 0, 0);
    check(
        "hostfs: truncate on the read-only volume -> EROFS",
        n == Err(Errno::EROFS),
        n,
    );
    let n = unlink(r, b"file", 0);
    check(
        "hostfs: unlink on the read-only volume -> EROFS",
        n == Err(Errno::EROFS),
        n,
    );
    let n = invoke(Call::HostfsChown {
        handle: ro,
        uid: u32::MAX as u64,
        gid: u32::MAX as u64,
    });
    check(
        "hostfs: chown on the read-only volume -> EROFS",
        n == Err(Errno::EROFS),
        n,
    );
    let n = link(ro, w, b"x");
    check(
        "hostfs: link from another volume -> EXDEV",
        n == Err(Errno::EXDEV),
        n,
    );
    let _ = clunk(ro);

    // writev's checks.
    let n = writev(w, &[b"x"], 0);
    check(
        "hostfs: writev a directory -> EISDIR",
        n == Err(Errno::EISDIR),
        n,
    );
    let n = writev(4095, &[b"x"], 0);
    check(
        "hostfs: writev an unknown handle -> EBADF",
        n == Err(Errno::EBADF),
        n,
    );
    let n = writev(f, &[], 0);
    check(
        "hostfs: writev of 0 buffers -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = invoke(Call::HostfsWritev {
        handle: f,
        iov: mem_bytes - 8,
        iovcnt: 1,
        off: 0,
    });
    check(
        "hostfs: writev with the array outside RAM -> EFAULT",
        n == Err(Errno::EFAULT),
        n,
    );
    let outside = [KernelIovec {
        base: mem_bytes - 16,
        len: 64,
    }];
    let n = invoke(Call::HostfsWritev {
        handle: f,
        iov: outside.as_ptr() as u64,
        iovcnt: 1,
        off: 0,
    });
    check(
        "hostfs: writev from a buffer outside RAM -> EFAULT",
        n == Err(Errno::EFAULT),
        n,
    );
    let huge = [
        KernelIovec {
            base: 0,
            len: 1 << 20,
        },
        KernelIovec { base: 0, len: 4096 },
    ];
    let n = invoke(Call::HostfsWritev {
        handle: f,
        iov: huge.as_ptr() as u64,
        iovcnt: 2,
        off: 0,
    });
    check(
        "hostfs: writev of more than 1 MiB -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = writev(f, &[b"x"], u64::MAX);
    check(
        "hostfs: writev at an offset past i64 -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = read(f, &mut buf, 0);
    check(
        "hostfs: nothing was written by the refused calls",
        n == Ok(9) && &buf[..9] == b"hello Rw\n",
        n,
    );

    // setattr, fsync, chown.
    let n = setattr(
        f,
        HOSTFS_SET_SIZE | HOSTFS_SET_MODE | HOSTFS_SET_MTIME,
        0o600,
        5,
    );
    let st = stat(f);
    check(
        "hostfs: setattr size 5, mode 0600, mtime",
        n == Ok(0)
            && st.is_ok_and(|s| {
                s.size == 5 && s.mode == S_IFREG | 0o600 && s.mtime_ns == 1_234_567_890_000_000_500
            }),
        n,
    );
    let n = setattr(f, 1 << 10, 0, 0);
    check(
        "hostfs: setattr unknown bits -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = setattr(f, HOSTFS_SET_MODE, 0o10000, 0);
    check(
        "hostfs: setattr a mode with type bits -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = setattr(w, HOSTFS_SET_SIZE, 0, 0);
    check(
        "hostfs: truncate a directory -> EISDIR",
        n == Err(Errno::EISDIR),
        n,
    );
    let n = invoke(Call::HostfsFsync {
        handle: f,
        datasync: 0,
    });
    check("hostfs: fsync -> 0", n == Ok(0), n);
    let n = invoke(Call::HostfsFsync {
        handle: w,
        datasync: 1,
    });
    check("hostfs: fdatasync a directory -> 0", n == Ok(0), n);
    let n = invoke(Call::HostfsFsync {
        handle: f,
        datasync: 2,
    });
    check(
        "hostfs: fsync with datasync 2 -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = invoke(Call::HostfsChown {
        handle: f,
        uid: u32::MAX as u64,
        gid: u32::MAX as u64,
    });
    check("hostfs: chown to the same owner -> 0", n == Ok(0), n);
    let n = invoke(Call::HostfsChown {
        handle: f,
        uid: 1 << 32,
        gid: 0,
    });
    check(
        "hostfs: chown to an id past u32 -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );

    // Directories, links, renames, removal.
    let d = create(w, b"dir", S_IFDIR | 0o750);
    let st = stat(d.unwrap_or(-1) as u64);
    check(
        "hostfs: create a directory -> a handle, mode 0750",
        st.is_ok_and(|s| s.mode == S_IFDIR | 0o750),
        d,
    );
    let d = d.unwrap_or(-1) as u64;
    let n = link(f, d, b"hard");
    let st = stat(f);
    check(
        "hostfs: link -> 0, nlink 2",
        n == Ok(0) && st.is_ok_and(|s| s.nlink == 2),
        n,
    );
    let n = link(d, w, b"dirlink");
    check(
        "hostfs: link a directory -> EPERM",
        n == Err(Errno::EPERM),
        n,
    );
    let n = link(f, d, b"..");
    check("hostfs: link to .. -> EINVAL", n == Err(Errno::EINVAL), n);
    let target = b"../outside/secret";
    let n = invoke(Call::HostfsSymlink {
        dir: d,
        name: b"lnk".as_ptr() as u64,
        name_len: 3,
        target: target.as_ptr() as u64,
        target_len: target.len() as u64,
    });
    check("hostfs: symlink -> a handle", n.is_ok(), n);
    if let Ok(h) = n {
        let m = invoke(Call::HostfsReadlink {
            handle: h as u64,
            buf: buf.as_mut_ptr() as u64,
            len: buf.len() as u64,
        });
        check(
            "hostfs: its target as written",
            m == Ok(target.len() as i64) && &buf[..target.len()] == target,
            m,
        );
        let _ = clunk(h as u64);
    }
    for (desc, t, len, want) in [
        (
            "hostfs: symlink to an empty target -> ENOENT",
            target.as_ptr() as u64,
            0,
            Errno::ENOENT,
        ),
        (
            "hostfs: symlink to a target outside RAM -> EFAULT",
            mem_bytes - 2,
            8,
            Errno::EFAULT,
        ),
        (
            "hostfs: symlink to a 4096-byte target -> ENAMETOOLONG",
            0,
            4096,
            Errno::ENAMETOOLONG,
        ),
    ] {
        let n = invoke(Call::HostfsSymlink {
            dir: d,
            name: b"bad".as_ptr() as u64,
            name_len: 3,
            target: t,
            target_len: len,
        });
        check(desc, n == Err(want), n);
    }
    let n = rename(w, b"new", d, b"moved", 0);
    check("hostfs: rename into a subdirectory -> 0", n == Ok(0), n);
    let n = walk(w, b"new");
    check("hostfs: the old name is gone", n == Err(Errno::ENOENT), n);
    let n = rename(d, b"moved", w2, b"x", 0);
    check(
        "hostfs: rename across volumes -> EXDEV",
        n == Err(Errno::EXDEV),
        n,
    );
    let n = rename(d, b"moved", r, b"x", 0);
    check(
        "hostfs: rename into the read-only volume -> EROFS",
        n == Err(Errno::EROFS),
        n,
    );
    let n = rename(d, b"moved", w, b"..", 0);
    check("hostfs: rename to .. -> EINVAL", n == Err(Errno::EINVAL), n);
    let n = rename(d, b"moved", d, b"hard", 1);
    check(
        "hostfs: rename with RENAME_NOREPLACE over a name -> EEXIST",
        n == Err(Errno::EEXIST),
        n,
    );
    let n = rename(d, b"moved", d, b"x", 1 << 8);
    check(
        "hostfs: rename with unknown flags -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = unlink(w, b"dir", HOSTFS_REMOVEDIR);
    check(
        "hostfs: rmdir a full directory -> ENOTEMPTY",
        n == Err(Errno::ENOTEMPTY),
        n,
    );
    let n = unlink(w, b"dir", 0);
    check(
        "hostfs: unlink a directory -> EISDIR",
        n == Err(Errno::EISDIR),
        n,
    );
    let n = unlink(w, b"dir", 1);
    check(
        "hostfs: unlink with unknown flags -> EINVAL",
        n == Err(Errno::EINVAL),
        n,
    );
    let n = unlink(w, b"..", HOSTFS_REMOVEDIR);
    check("hostfs: rmdir .. -> EINVAL", n == Err(Errno::EINVAL), n);
    let mut all = true;
    for name in [&b"moved"[..], b"hard", b"lnk"] {
        all &= unlink(d, name, 0) == Ok(0);
    }
    let n = unlink(w, b"dir", HOSTFS_REMOVEDIR);
    check(
        "hostfs: unlink the files, rmdir the directory",
        all && n == Ok(0),
        n,
    );
    let st = stat(f);
    check(
        "hostfs: an unlinked file's handle still works (nlink 0)",
        st.is_ok_and(|s| s.nlink == 0 && s.size == 5),
        st.map(|s| s.nlink as i64),
    );
    for h in [f, d, w, w2, r] {
        let _ = clunk(h);
    }
}
