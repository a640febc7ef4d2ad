//! While the guest runs, a watcher thread polls the debugger's socket (or,
//! with no client, the listening socket). When something arrives — a
//! Ctrl-C, a packet, a new client — it raises `attention` and kicks the
//! vCPU thread with the time-slice signal, whose handler sets
//! `kvm_run.immediate_exit`, so `KVM_RUN` returns at once and the run loop
//! serves the debugger between two exits. The hot path pays nothing: the
//! run loop reads the flag only when a debugger was asked for.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the watcher polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// Nothing: the vCPU thread is talking to the client itself.
    Nothing,
    /// A connected client's socket (guest running).
    Client(RawFd),
    /// The listening socket (no client; guest running).
    Listener(RawFd),
}

struct State {
    watch: Watch,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    attention: AtomicBool,
}

/// The watcher thread and the flag it raises.
pub struct Watcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts the thread; `vcpu_thread` is the thread that runs `KVM_RUN`
    /// and `signal` the signal whose handler sets `immediate_exit`. The
    /// thread sandboxes itself first (`sandbox::Role::Watcher`; no filter
    /// if `seccomp` is false), and the start fails if it cannot.
    pub fn start(
        vcpu_thread: libc::pthread_t,
        signal: libc::c_int,
        seccomp: bool,
    ) -> std::io::Result<Watcher> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                watch: Watch::Nothing,
                shutdown: false,
            }),
            cond: Condvar::new(),
            attention: AtomicBool::new(false),
        });
        let s = shared.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("gdb-watcher".into())
            .spawn(move || {
                let entered = crate::sandbox::enter(crate::sandbox::Role::Watcher, seccomp);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered.map_err(|e| e.to_string()));
                if ok {
                    watch_loop(&s, vcpu_thread, signal);
                }
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(std::io::Error::other(format!("gdb watcher: {e}"))),
            Err(_) => return Err(std::io::Error::other("gdb watcher: the thread ended")),
        }
        Ok(Watcher {
            shared,
            thread: Some(thread),
        })
    }

    /// Changes what is watched (and lowers the flag).
    pub fn set(&self, watch: Watch) {
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        st.watch = watch;
        self.shared.attention.store(false, Ordering::Release);
        self.shared.cond.notify_all();
    }

    /// Whether the watcher saw something for the run loop.
    pub fn attention(&self) -> bool {
        self.shared.attention.load(Ordering::Acquire)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            st.shutdown = true;
            self.shared.cond.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch_loop(s: &Shared, vcpu_thread: libc::pthread_t, signal: libc::c_int) {
    loop {
        let fd = {
            let mut st = s.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if st.shutdown {
                    return;
                }
                match st.watch {
                    Watch::Client(fd) | Watch::Listener(fd)
                        if !s.attention.load(Ordering::Acquire) =>
                    {
                        break fd
                    }
                    _ => {
                        st = s
                            .cond
                            .wait_timeout(st, Duration::from_millis(200))
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                }
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is one valid pollfd; a closed fd just reports POLLNVAL.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n <= 0 || pfd.revents & libc::POLLNVAL != 0 {
            continue;
        }
        let st = s.state.lock().unwrap_or_else(|p| p.into_inner());
        let same = matches!(st.watch, Watch::Client(f) | Watch::Listener(f) if f == fd);
        if same && !st.shutdown && !s.attention.swap(true, Ordering::AcqRel) {
            // SAFETY: vcpu_thread is the live thread that owns the VM (it
            // joins this one before it ends); the signal has a handler that
            // only stores to immediate_exit.
            unsafe { libc::pthread_kill(vcpu_thread, signal) };
        }
    }
}
