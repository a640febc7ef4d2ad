//! A deadline that may repeat: what every timer arms (POSIX timers, the
//! interval timers, timerfds). A leaf module, so `fs` and `proc` share it.

/// A deadline on some clock, and the interval it repeats at (0: once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arming {
    /// In the clock's nanoseconds; 0: disarmed.
    pub deadline: u64,
    pub interval: u64,
}

impl Arming {
    /// Armed to go off `value` ns after `now` (0: disarmed), then every
    /// `interval`.
    pub fn after(now: u64, value: u64, interval: u64) -> Arming {
        Arming {
            deadline: if value == 0 {
                0
            } else {
                now.saturating_add(value).max(1)
            },
            interval,
        }
    }

    /// Called when the clock reads `now`: whether it went off, and how
    /// many intervals it missed beyond the one that did. A periodic
    /// deadline moves past `now`; a one-shot one is disarmed.
    pub fn advance(&mut self, now: u64) -> Option<u64> {
        if self.deadline == 0 || now < self.deadline {
            return None;
        }
        let missed = match (now - self.deadline).checked_div(self.interval) {
            None => {
                self.deadline = 0;
                0
            }
            Some(missed) => {
                let step = (missed + 1).saturating_mul(self.interval);
                self.deadline = self.deadline.saturating_add(step);
                missed
            }
        };
        Some(missed)
    }

    /// The time left when the clock reads `now` (an expired deadline
    /// still armed reports 1 ns: its signal is on the way, as Linux
    /// reports).
    pub fn left(&self, now: u64) -> u64 {
        if self.deadline == 0 {
            0
        } else {
            self.deadline.saturating_sub(now).max(1)
        }
    }
}
