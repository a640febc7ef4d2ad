//! The host terminal. When vkernel's stdin is a terminal, the run puts it
//! in raw mode (every byte, Ctrl-C included, goes to the guest's line
//! discipline, which does echo, editing and signals as a Linux terminal
//! does) and restores it on every way out: the [`Raw`] guard's drop
//! (normal exit, a host error, a guest crash), a panic (the hook), a
//! fatal signal to vkernel (SIGTERM, SIGHUP, SIGINT, SIGQUIT: restored,
//! then the signal acts as before), a seccomp violation (its handler).
//! The escape Ctrl-] then `q` ends the run ([`EXIT_ESCAPE`]); the guest
//! never sees those bytes. A change of the terminal's size (SIGWINCH) is
//! noted for the idle hypercall to report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use vkernel_abi::Errno;
use vmspace::KernelRam;

/// Exit status of a run ended by Ctrl-] q (a shell's status for SIGINT).
pub const EXIT_ESCAPE: u8 = 130;

/// The escape byte: Ctrl-].
pub const ESCAPE: u8 = 0x1d;

/// The settings to restore, saved before raw mode.
static SAVED: OnceLock<libc::termios> = OnceLock::new();
/// Raw mode is on (the settings in [`SAVED`] are not the terminal's).
static RAW: AtomicBool = AtomicBool::new(false);
/// SIGWINCHs received (the size changed).
static WINCH: AtomicU64 = AtomicU64::new(0);
/// Whether stdin is a terminal (raw mode or not), fixed at [`Raw::enter`].
static IS_TTY: AtomicBool = AtomicBool::new(false);

/// Whether the host terminal is in raw mode now (then vkernel's own
/// lines end in CR LF).
pub fn raw() -> bool {
    RAW.load(Ordering::Relaxed)
}

/// Puts the saved settings back, once. Async-signal-safe (one ioctl).
pub fn restore() {
    if RAW.swap(false, Ordering::SeqCst) {
        if let Some(t) = SAVED.get() {
            // SAFETY: tcsetattr reads the termios we own.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }
}

/// Signals that end vkernel by default and must leave the terminal as
/// it was.
const FATAL: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT];

extern "C" fn on_fatal(sig: libc::c_int) {
    restore();
    // The handler was installed SA_RESETHAND | SA_NODEFER: the signal
    // raised again takes its default action now.
    // SAFETY: raise only sends a signal to this thread.
    unsafe { libc::raise(sig) };
}

extern "C" fn on_winch(_: libc::c_int) {
    WINCH.fetch_add(1, Ordering::SeqCst);
}

/// The guard that holds the terminal in raw mode for the run.
pub struct Raw(());

impl Raw {
    /// Raw mode if stdin is a terminal (`None` otherwise: input stays a
    /// byte stream). Installs the handlers first, so that no way out
    /// leaves the terminal raw.
    pub fn enter() -> std::io::Result<Option<Raw>> {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(0) } != 1 {
            return Ok(None);
        }
        IS_TTY.store(true, Ordering::SeqCst);
        // SAFETY: zeroed termios is valid for tcgetattr to fill.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr writes into `t`.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let _ = SAVED.set(t);
        // SAFETY: sigaction with handlers that only touch atomics and
        // make async-signal-safe calls.
        unsafe {
            for sig in FATAL {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_fatal as *const () as usize;
                sa.sa_flags = libc::SA_RESETHAND | libc::SA_NODEFER;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
            // No SA_RESTART: the idle wait returns at once to report it.
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_winch as *const () as usize;
            libc::sigaction(libc::SIGWINCH, &sa, std::ptr::null_mut());
        }
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        let mut raw = t;
        // SAFETY: cfmakeraw edits the copy.
        unsafe { libc::cfmakeraw(&mut raw) };
        RAW.store(true, Ordering::SeqCst);
        // SAFETY: tcsetattr reads `raw`.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) } != 0 {
            RAW.store(false, Ordering::SeqCst);
            return Err(std::io::Error::last_os_error());
        }
        Ok(Some(Raw(())))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        restore();
    }
}

/// Takes the note of a size change since the last call.
pub fn winch_pending(seen: &mut u64) -> bool {
    let now = WINCH.load(Ordering::SeqCst);
    let changed = now != *seen;
    *seen = now;
    changed
}

/// The `console_winsize(buf)` hypercall: the terminal's size as a Linux
/// `struct winsize` at guest-physical `buf`; returns the size changes
/// seen so far. ENOTTY when stdin is not a terminal.
pub fn winsize(ram: &KernelRam, buf: u64) -> Result<i64, Errno> {
    ram.check(buf, 8)?;
    if !IS_TTY.load(Ordering::SeqCst) {
        return Err(Errno::ENOTTY);
    }
    // SAFETY: zeroed winsize is valid for TIOCGWINSZ to fill.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return Err(Errno::ENOTTY);
    }
    let mut b = [0u8; 8];
    for (i, v) in [ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel]
        .iter()
        .enumerate()
    {
        b[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
    }
    ram.write_slice(buf, &b)?;
    Ok(WINCH.load(Ordering::SeqCst) as i64)
}

/// Whether stdin is a terminal in raw mode for this run.
pub fn is_tty() -> bool {
    IS_TTY.load(Ordering::SeqCst)
}

/// Finds the escape (Ctrl-] then `q`) in input bytes going to the guest:
/// drops it and says so. `held` is a Ctrl-] that ended the previous
/// chunk. Ctrl-] twice sends one; Ctrl-] and another byte send both.
pub fn filter_escape(bytes: &mut Vec<u8>, held: &mut bool) -> bool {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    for &b in bytes.iter() {
        if std::mem::take(held) {
            match b {
                b'q' => {
                    *bytes = out;
                    return true;
                }
                ESCAPE => out.push(ESCAPE),
                _ => out.extend_from_slice(&[ESCAPE, b]),
            }
        } else if b == ESCAPE {
            *held = true;
        } else {
            out.push(b);
        }
    }
    *bytes = out;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut held = false;
        let mut all = Vec::new();
        for c in chunks {
            let mut v = c.to_vec();
            if filter_escape(&mut v, &mut held) {
                all.extend(v);
                return (all, true);
            }
            all.extend(v);
        }
        (all, false)
    }

    #[test]
    fn the_escape_is_ctrl_bracket_then_q_even_across_reads() {
        assert_eq!(run(&[b"ab\x1dq", b"zz"]), (b"ab".to_vec(), true));
        assert_eq!(run(&[b"ab\x1d", b"qzz"]), (b"ab".to_vec(), true));
        assert_eq!(run(&[b"\x1d\x1dq"]), (b"\x1dq".to_vec(), false));
        assert_eq!(run(&[b"\x1dx", b"q"]), (b"\x1dxq".to_vec(), false));
        assert_eq!(run(&[b"\x03q"]), (b"\x03q".to_vec(), false));
    }
}
