//! Wait channels: the values processes sleep on (xv6's `void *chan`).
//! Whoever makes the awaited thing happen wakes the channel; see
//! `proc/wait.rs`. A leaf module, so every subsystem can name them.

/// What a sleeping process waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chan {
    /// A child of this process (thread group id) changed state: wait4.
    Child(u32),
    /// Console input: a read of the console with none buffered.
    ConsoleInput,
    /// A futex word, by its key (see `proc/futex.rs`): an address space
    /// and a user address, or a shared file object and an offset in it.
    Futex(u64, u64),
    /// The parent of a vfork child (this pid) waits for it to exec or exit.
    Vfork(u32),
    /// Terminal output was stopped (STOP, TCOOFF) and may start again.
    TtyOutput,
    /// Pseudo-terminal `id` changed: input or output moved, room was
    /// made, a side closed (both sides' readers, writers and pollers
    /// look again).
    Pty(u64),
    /// A process exited or was reaped: pidfd pollers look again.
    ProcessExit,
    /// Only the deadline can end this sleep (nanosleep).
    Timer,
    /// Only a signal (or a deadline) can end this sleep: pause,
    /// sigsuspend, sigtimedwait.
    Signal,
    /// Pipe `id` has data to read, or a writer left.
    PipeReadable(u64),
    /// Pipe `id` has room to write, or its readers left.
    PipeWritable(u64),
    /// Eventfd `id`'s counter changed (a read or a write may go on).
    Eventfd(u64),
    /// A signal was queued: signalfd readers and pollers look again.
    SignalFd,
    /// Unix socket `id`'s queue or peer changed.
    Socket(u64),
    /// Timerfd `id` went off (or was set again).
    TimerFd(u64),
    /// Epoll instance `id`'s interest list changed.
    Epoll(u64),
    /// The file locks (record or flock) of inode `(dev, ino)` changed:
    /// an `F_SETLKW` or a blocking flock may get its lock now.
    FileLock(u64, u64),
    /// poll, select, epoll_wait: any channel of the sleeper's set
    /// (`Proc::poll_chans`); see `proc/wait.rs`.
    Poll,
}
