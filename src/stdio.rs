//! The RPC channel's two ends, stdin and stdout, as the runtime reads and writes them.
//!
//! Neovim starts a job's stdio as socket pairs (libuv's), which can be read and written
//! without blocking on the runtime's own thread. tokio's `stdin()` and `fs::File` (what
//! `nvim_rs::create::tokio::new_parent` uses) hand every read and write to a thread of the
//! blocking pool instead: two more wake-ups per message, a few times a second during an answer.
//! Anything that is not a socket (a pipe, a file, a terminal: a person trying the binary)
//! keeps that way, and so does every handle on Windows (where Neovim gives a job named pipes
//! and tokio's std streams are the one portable way to use them).

#[cfg(unix)]
use std::os::fd::{FromRawFd, OwnedFd};
use tokio::io::{AsyncRead, AsyncWrite};

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Stdin and stdout through tokio's blocking pool (Windows).
#[cfg(not(unix))]
pub fn open() -> std::io::Result<(Reader, Writer)> {
    Ok((Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout())))
}

/// Stdin and stdout, non-blocking when they are sockets. Must run inside the runtime.
#[cfg(unix)]
pub fn open() -> std::io::Result<(Reader, Writer)> {
    let reader: Reader = match socket(0)? {
        Some(s) => Box::new(s),
        None => Box::new(tokio::io::stdin()),
    };
    let writer: Writer = match socket(1)? {
        Some(s) => Box::new(s),
        None => {
            // A duplicate, so that dropping it never closes fd 1 itself.
            let fd = dup(1)?;
            Box::new(tokio::fs::File::from_std(std::fs::File::from(fd)))
        }
    };
    Ok((reader, writer))
}

#[cfg(unix)]
/// `fd` as a tokio Unix stream when it is a socket (through a duplicate: fd 0 and 1 stay).
fn socket(fd: i32) -> std::io::Result<Option<tokio::net::UnixStream>> {
    // SAFETY: fstat only writes the zeroed struct it is given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor number; a closed one fails with EBADF.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Ok(None);
    }
    let s = std::os::unix::net::UnixStream::from(dup(fd)?);
    s.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(s).map(Some)
}

#[cfg(unix)]
fn dup(fd: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: dup of a descriptor number; the result, when valid, is ours alone.
    let new = unsafe { libc::dup(fd) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}
