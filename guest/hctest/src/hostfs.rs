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
//! and `../outside/secret` beside it, which nothing may reach. Without
//! the fixture (`--append test=hypercalls` alone) the cases are skipped.

use guestlib::hypercall::invoke;
use vkernel_abi::{Call, Errno, HostfsStat, KernelIovec, HOSTFS_MAX_HANDLES};

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
}
