//! The only unsafe code of dx-py-core: memory maps, the page advice that can drop a map's pages,
//! the system calls rustix does not wrap (`sync_file_range`, `mincore`, a `pre_exec` hook, signal
//! handlers), and one allocator setting (`mallopt`).
//!
//! Every other system call goes through `rustix` (safe wrappers) or std, and every other module
//! is `#![deny(unsafe_code)]` (see `lib.rs`). Each function here is safe to call: its
//! preconditions are checked, or hold for every file dx-py maps (see [`map_immutable`]); each
//! `unsafe` block says why it holds.
#![allow(unsafe_code)]

use std::path::Path;

use memmap2::Mmap;

/// Maps the whole file at `path` read-only (shared: the pages are the page cache's).
///
/// An empty file is returned as an empty map (mmap of length 0 is an error on Linux).
///
/// Only for files that no process modifies or truncates while the map lives: dx-py maps store
/// objects, trees, the layout index, locks and parsed index pages, all written under a
/// temporary name and renamed (or linked) into place, never modified afterwards. Their readers
/// still treat the bytes as untrusted (bounds checks, checksums), so a file damaged on disk gives
/// an error (or, for a parsed page, a miss), not a wrong answer. This is the one place that
/// relies on that rule.
pub fn map_immutable(path: &Path) -> std::io::Result<Mmap> {
    let file = fs_err::File::open(path)?;
    // SAFETY: the file is one dx-py published by rename and never changes (see above).
    unsafe { Mmap::map(file.file()) }
}

/// Makes glibc's allocator grow its heaps 64 MiB at a time instead of 128 KiB. Reading the index
/// pages and metadata of a resolution allocates tens of thousands of small strings on several
/// threads; with the default, each arena grows by one `brk`/`mprotect` call per 128 KiB, which
/// was a third of an offline lock's time. Address space only: pages are touched as they are used.
/// Other C libraries: nothing to do. For resolutions only: a process that then forks (a mount
/// starting its server) was twice as slow to mount with it.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` changes a tunable of the allocator (under glibc's own arena lock, so
    // from any thread); M_TOP_PAD takes any non-negative size.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// The page size of this machine (4 KiB on x86-64, up to 64 KiB elsewhere).
#[cfg(unix)]
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// Bytes `range` of `map`, widened to whole pages (clamped to the map); `None` when the range is
/// empty or does not lie inside the map.
#[cfg(target_os = "linux")]
fn page_range(map: &Mmap, range: std::ops::Range<u64>) -> Option<std::ops::Range<usize>> {
    let page = page_size();
    let len = map.len() as u64;
    if range.start >= range.end || range.end > len {
        return None;
    }
    let lo = range.start & !(page - 1);
    let hi = range
        .end
        .checked_add(page - 1)
        .map_or(len, |e| e & !(page - 1))
        .min(len);
    Some(lo as usize..hi as usize)
}

/// Hands the pages of `map` that lie wholly inside `range` back to the kernel: this process
/// unmaps them (`MADV_DONTNEED`) after asking the kernel to write them out and split the large
/// folios at the range's edges (`MADV_PAGEOUT`, advisory; before Linux 5.4 it answers `EINVAL`).
/// Returns the page-aligned range released (empty when no whole page lies inside).
///
/// The pages come back, unchanged, on the next access: `map` is a shared read-only map of an
/// immutable file, so slices other threads hold into it stay valid.
#[cfg(target_os = "linux")]
pub fn release_pages(
    map: &Mmap,
    range: std::ops::Range<u64>,
) -> std::io::Result<std::ops::Range<u64>> {
    use rustix::mm::Advice;
    let page = page_size();
    let lo = range.start.next_multiple_of(page);
    let hi = (range.end.min(map.len() as u64)) & !(page - 1);
    if lo >= hi {
        return Ok(lo..lo);
    }
    let addr = map[lo as usize..]
        .as_ptr()
        .cast_mut()
        .cast::<std::ffi::c_void>();
    let n = (hi - lo) as usize;
    // SAFETY: `[lo, hi)` lies inside the map and starts on a page boundary (a map starts on one).
    // The map is a shared, read-only mapping of a file nobody modifies (`map_immutable`):
    // MADV_PAGEOUT and MADV_DONTNEED only remove this process's page table entries (and may evict
    // the clean pages), and the next access faults the same bytes back in from the file.
    let _ = unsafe { rustix::mm::madvise(addr, n, Advice::LinuxPageOut) };
    // SAFETY: as above.
    unsafe { rustix::mm::madvise(addr, n, Advice::LinuxDontNeed) }?;
    Ok(lo..hi)
}

/// Starts reading the pages of `map` that hold bytes `range` (`MADV_WILLNEED`), so that
/// touching them waits for one read rather than one per page fault. Nothing when the range does
/// not lie inside the map.
#[cfg(target_os = "linux")]
pub fn prefetch_pages(map: &Mmap, range: std::ops::Range<u64>) -> std::io::Result<()> {
    match page_range(map, range) {
        Some(r) => map.advise_range(memmap2::Advice::WillNeed, r.start, r.len()),
        None => Ok(()),
    }
}

/// How many pages of `map` holding bytes `range` are in the page cache, and of how many
/// (`mincore`; rustix has no wrapper).
#[cfg(target_os = "linux")]
pub fn resident_pages(map: &Mmap, range: std::ops::Range<u64>) -> std::io::Result<(usize, usize)> {
    let Some(r) = page_range(map, range) else {
        return Ok((0, 0));
    };
    let page = page_size() as usize;
    let mut vec = vec![0u8; r.len().div_ceil(page)];
    // SAFETY: `r` lies inside the map and starts on a page boundary; `vec` has one byte per page
    // of it, which is all mincore writes.
    let rc = unsafe {
        libc::mincore(
            map[r.start..].as_ptr().cast_mut().cast(),
            r.len(),
            vec.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((vec.iter().filter(|&&b| b & 1 != 0).count(), vec.len()))
}

/// Starts writing back bytes `[offset, offset + len)` of `file` (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`; rustix has no wrapper). It only schedules writeback.
#[cfg(target_os = "linux")]
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    // SAFETY: a plain system call on a descriptor `file` keeps open; no memory is passed.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the child of `cmd` start a new session (`setsid` between fork and exec): no
/// controlling terminal, its own process group, so closing the terminal or Ctrl-C in it does not
/// reach the child.
#[cfg(unix)]
pub fn detach_on_spawn(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls setsid, which is
    // async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
}

/// The write end of the pipe [`forward_signals`] made; -1 before.
#[cfg(unix)]
static SIGNAL_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The handler of forwarded signals: one byte, the signal's number, into the pipe. Nothing else
/// is safe in a signal handler; the thread reading the pipe does the work.
#[cfg(unix)]
extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let byte = u8::try_from(signal).unwrap_or(u8::MAX);
        // SAFETY: write(2) is async-signal-safe, `fd` is the pipe's write end (never closed)
        // and the buffer a live byte. The pipe does not block: when it is full, readers have
        // a byte to wake up for already and this one is dropped.
        unsafe {
            libc::write(fd, (&raw const byte).cast(), 1);
        }
    }
}

/// Makes each of `signals` write its number, as one byte, into a pipe instead of taking its
/// default action, and returns the pipe's read end: the reader handles signals in an ordinary
/// thread. Call once per process. The pipe is close-on-exec and `exec` restores default
/// actions, so a process the caller `exec`s is not affected.
#[cfg(unix)]
pub fn forward_signals(signals: &[libc::c_int]) -> std::io::Result<std::io::PipeReader> {
    use std::os::fd::IntoRawFd;
    let (reader, writer) = std::io::pipe()?;
    rustix::fs::fcntl_setfl(&writer, rustix::fs::OFlags::NONBLOCK)?;
    SIGNAL_PIPE.store(writer.into_raw_fd(), std::sync::atomic::Ordering::Relaxed);
    for &signal in signals {
        // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty mask) that is then
        // filled in; the handler only does async-signal-safe work (see `on_signal`).
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&raw mut action.sa_mask);
            libc::sigaction(signal, &raw const action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(reader)
}

/// Gives `signal` its default action back (after a first Ctrl-C was handled, a second one ends
/// the process at once).
#[cfg(unix)]
pub fn default_signal_action(signal: libc::c_int) {
    // SAFETY: SIG_DFL is always a valid disposition; signal(2) has no other precondition.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn mapped(len: usize) -> (tempfile::TempDir, Mmap) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs_err::write(&path, vec![7u8; len]).unwrap();
        let map = map_immutable(&path).unwrap();
        (dir, map)
    }

    #[test]
    fn release_keeps_the_bytes_and_only_whole_pages() {
        let page = page_size();
        let (_dir, map) = mapped(4 * page as usize);
        prefetch_pages(&map, 0..4 * page).unwrap();
        assert_eq!(release_pages(&map, 1..page).unwrap(), page..page);
        assert_eq!(
            release_pages(&map, 1..3 * page + 1).unwrap(),
            page..3 * page
        );
        assert!(map.iter().all(|&b| b == 7));
        let (resident, pages) = resident_pages(&map, 0..4 * page).unwrap();
        assert_eq!(pages, 4);
        assert!(resident <= 4);
    }

    #[test]
    fn ranges_outside_the_map_are_ignored() {
        let (_dir, map) = mapped(100);
        prefetch_pages(&map, 50..200).unwrap();
        assert_eq!(resident_pages(&map, 200..300).unwrap(), (0, 0));
        let empty = map_immutable(_dir.path().join("f").as_path()).unwrap();
        assert_eq!(resident_pages(&empty, 0..0).unwrap(), (0, 0));
    }
}
