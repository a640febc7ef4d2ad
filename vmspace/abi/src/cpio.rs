//! The image format: a cpio "newc" archive (`cpio -o -H newc`). The host
//! checks an image with this parser before booting; the guest kernel reads
//! its files with it. Parsing only; nothing here allocates.

/// Length of a newc header.
pub const HEADER_LEN: usize = 110;
/// Magic of a newc header (without CRC).
pub const MAGIC: &[u8; 6] = b"070701";
/// Magic of a newc header with CRC (accepted too; the CRC is not checked).
pub const MAGIC_CRC: &[u8; 6] = b"070702";
/// Name of the last entry.
pub const TRAILER: &str = "TRAILER!!!";

/// File type bits of `mode`.
pub const S_IFMT: u32 = 0o170000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;

/// One archive member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path as stored, without a leading "./" or "/".
    pub name: &'a str,
    /// `st_mode`.
    pub mode: u32,
    /// Contents.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// Whether the member is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
}

/// Why an archive could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioError {
    /// A header is cut short at this offset.
    Truncated(usize),
    /// No newc magic at this offset.
    BadMagic(usize),
    /// A header field is not hexadecimal, at this offset.
    BadHeader(usize),
    /// A name is not UTF-8 or lacks its NUL, at this offset.
    BadName(usize),
    /// The archive ends without a TRAILER!!! entry.
    NoTrailer,
}

impl core::fmt::Display for CpioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CpioError::Truncated(o) => write!(f, "archive truncated at byte {o}"),
            CpioError::BadMagic(o) => write!(f, "no cpio newc magic at byte {o}"),
            CpioError::BadHeader(o) => write!(f, "malformed cpio header at byte {o}"),
            CpioError::BadName(o) => write!(f, "malformed file name at byte {o}"),
            CpioError::NoTrailer => write!(f, "archive has no TRAILER!!! entry"),
        }
    }
}

fn hex_field(h: &[u8], idx: usize, at: usize) -> Result<u32, CpioError> {
    let start = 6 + idx * 8;
    let mut v: u32 = 0;
    for &c in &h[start..start + 8] {
        let d = (c as char).to_digit(16).ok_or(CpioError::BadHeader(at))?;
        v = (v << 4) | d;
    }
    Ok(v)
}

const fn align4(x: usize) -> usize {
    (x + 3) & !3
}

/// Iterator over the members of an archive, the trailer excluded. It
/// yields `Err` once and then stops if the archive is malformed.
#[derive(Clone, Debug)]
pub struct Archive<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Archive<'a> {
    /// An iterator over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Archive {
            buf,
            pos: 0,
            done: false,
        }
    }

    /// Checks the whole archive, returning the number of members.
    pub fn validate(buf: &'a [u8]) -> Result<usize, CpioError> {
        let mut n = 0;
        for e in Archive::new(buf) {
            e?;
            n += 1;
        }
        Ok(n)
    }

    /// Finds a regular file by path ("init", "/init" and "./init" are one).
    pub fn find(buf: &'a [u8], path: &str) -> Option<Entry<'a>> {
        let want = normalize(path);
        Archive::new(buf)
            .filter_map(Result::ok)
            // A directory or link of that name is not it (found by the
            // host-side fuzzer: a directory `init` ahead of the file
            // was returned, and the host checked it as /init).
            .find(|e| e.name == want && e.is_file())
    }

    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, CpioError> {
        let at = self.pos;
        let rest = self.buf.get(at..).ok_or(CpioError::NoTrailer)?;
        if rest.is_empty() {
            return Err(CpioError::NoTrailer);
        }
        if rest.len() < HEADER_LEN {
            return Err(CpioError::Truncated(at));
        }
        let h = &rest[..HEADER_LEN];
        if &h[..6] != MAGIC && &h[..6] != MAGIC_CRC {
            return Err(CpioError::BadMagic(at));
        }
        let mode = hex_field(h, 1, at)?;
        let filesize = hex_field(h, 6, at)? as usize;
        let namesize = hex_field(h, 11, at)? as usize;
        if namesize == 0 {
            return Err(CpioError::BadName(at));
        }
        let name_end = HEADER_LEN
            .checked_add(namesize)
            .ok_or(CpioError::Truncated(at))?;
        let raw_name = rest
            .get(HEADER_LEN..name_end)
            .ok_or(CpioError::Truncated(at))?;
        let (last, name) = raw_name.split_last().ok_or(CpioError::BadName(at))?;
        if *last != 0 {
            return Err(CpioError::BadName(at));
        }
        let name = core::str::from_utf8(name).map_err(|_| CpioError::BadName(at))?;
        let data_start = align4(name_end);
        let data_end = data_start
            .checked_add(filesize)
            .ok_or(CpioError::Truncated(at))?;
        let data = rest
            .get(data_start..data_end)
            .ok_or(CpioError::Truncated(at))?;
        self.pos = at + align4(data_end);
        if name == TRAILER {
            return Ok(None);
        }
        Ok(Some(Entry {
            name: normalize(name),
            mode,
            data,
        }))
    }
}

/// Strips leading "./" and "/" from a path.
pub fn normalize(mut path: &str) -> &str {
    loop {
        if let Some(p) = path.strip_prefix("./") {
            path = p;
        } else if let Some(p) = path.strip_prefix('/') {
            path = p;
        } else {
            return path;
        }
    }
}

impl<'a> Iterator for Archive<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
